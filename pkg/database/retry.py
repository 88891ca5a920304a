"""Safe whole-transaction retries.

``execute_transaction(provider, callback, retries=3)`` runs ``await callback(session)`` in a
transaction; when the transaction fails in a way a rerun may cure, it waits (jittered
exponential backoff) and reruns the callback in a *fresh* transaction::

    async def transfer(session):
        ...

    await execute_transaction(Session, transfer, retries=3)

    @retry_transaction(Session, retries=3)
    async def rename(session, user_id: int, name: str) -> None:
        await users.update_by_id(user_id, username=name, session=session)

    await rename(5, "ada")                      # the session is passed in, per attempt

What is retried: :class:`~pkg.database.errors.ConcurrencyConflictError` (serialization
failure, deadlock, lock timeout) and :class:`~pkg.database.errors.ConnectionLostError`
before COMMIT was sent. Never retried: integrity errors and everything else, and a
connection lost *while COMMIT was in flight*: the transaction may have committed, so a rerun
could apply it twice; that raises :class:`~pkg.database.errors.CommitOutcomeUnknownError`.

Inside an already open transaction a retry cannot rerun the whole transaction (the outer
one is aborted too), so ``retries > 0`` there raises ``QueryError``; ``retries=0`` runs once
(as a SAVEPOINT of it), as before. The callback must be safe to rerun: no side effects
outside the database (or ones that tolerate repetition).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.errors import (
    CommitOutcomeUnknownError,
    ConcurrencyConflictError,
    ConfigurationError,
    ConnectionLostError,
    QueryError,
)
from pkg.database.transactions import CallSession, SessionProvider, transaction

__all__ = ["execute_transaction", "retry_delay", "retry_transaction"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
RETRYABLE = (ConcurrencyConflictError, ConnectionLostError)


def retry_delay(attempt: int, backoff: float, max_backoff: float) -> float:
    """Seconds before retry ``attempt`` (1-based): ``backoff * 2**(attempt-1)``, capped at
    ``max_backoff``, then jittered to 50-100 % of that so colliding transactions drift apart."""
    ceiling = float(min(max_backoff, backoff * 2 ** (attempt - 1)))
    return ceiling * (0.5 + random.random() / 2)


def _check(retries: int, backoff: float, max_backoff: float) -> None:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(f"retries must be a whole number >= 0, got {retries!r}", key="retries")
    if not backoff >= 0 or not max_backoff >= 0:
        raise ConfigurationError("backoff and max_backoff must be >= 0", key="backoff")


async def _attempt(
    provider: SessionProvider, callback: Callable[[AsyncSession], Awaitable[Any]], autoflush: bool, own: bool
) -> Any:
    """One transaction; a connection lost during its COMMIT is ``CommitOutcomeUnknownError``."""
    committing = False
    try:
        async with transaction(provider, autoflush=autoflush) as session:
            result = await callback(session)
            await session.flush()  # everything but the COMMIT itself, so a failure here is safe
            committing = own
        return result
    except ConnectionLostError as exc:
        if committing:
            raise CommitOutcomeUnknownError(
                "the connection was lost while COMMIT was in flight: the transaction may have "
                "committed; not retried"
            ) from exc
        raise


async def execute_transaction(
    provider: SessionProvider,
    callback: Callable[[AsyncSession], Awaitable[Any]],
    *,
    autoflush: bool = True,
    retries: int = 0,
    backoff: float = 0.05,
    max_backoff: float = 2.0,
) -> Any:
    """Run ``await callback(session)`` in one transaction and return its result.

    ``retries``: rerun it in a fresh transaction up to that many times on a serialization
    failure, deadlock or lost connection (never once COMMIT was sent), after
    :func:`retry_delay` seconds. Refused (``QueryError``) inside an open transaction.
    """
    _check(retries, backoff, max_backoff)
    joined = CallSession(provider).joins(None)
    if joined and retries:
        raise QueryError(
            "execute_transaction(retries=...) inside an open transaction cannot rerun the whole "
            "transaction; call it outside transaction(), or with retries=0 (runs once)"
        )
    attempt = 0
    while True:
        try:
            return await _attempt(provider, callback, autoflush, own=not joined)
        except RETRYABLE as exc:
            if attempt >= retries:
                raise
            attempt += 1
            delay = retry_delay(attempt, backoff, max_backoff)
            name = type(exc).__name__
            logger.info("transaction failed (%s); retry %d of %d in %.3fs", name, attempt, retries, delay)
            await asyncio.sleep(delay)


def retry_transaction(
    provider: SessionProvider, *, retries: int = 3, backoff: float = 0.05, max_backoff: float = 2.0
) -> Callable[[Callable[Concatenate[AsyncSession, P], Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate ``async def f(session, ...)``: each call runs ``f`` in a transaction of
    ``provider``, retried like :func:`execute_transaction`; callers omit ``session``."""
    _check(retries, backoff, max_backoff)

    def decorate(func: Callable[Concatenate[AsyncSession, P], Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(func)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            async def once(session: AsyncSession) -> R:
                return await func(session, *args, **kwargs)

            result: R = await execute_transaction(
                provider, once, retries=retries, backoff=backoff, max_backoff=max_backoff
            )
            return result

        return run

    return decorate
