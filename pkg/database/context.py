"""Ambient state carried in context variables: the current actor and the open transaction.

``acting_as`` sets who is writing (read by ``AuditMixin``)::

    with acting_as(user.id):
        await dao.update_by_id(5, name="x")   # updater_id = user.id

``transaction(provider)`` opens one transaction that every DAO call inside joins::

    async with transaction(Session) as session:
        await users.create(...)
        await orders.create(...)               # same session, same COMMIT
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.exceptions import translate_error

__all__ = [
    "SessionProvider",
    "acting_as",
    "ambient_session",
    "current_actor",
    "raise_translated",
    "transaction",
]

logger = logging.getLogger(__name__)

SessionProvider = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Any zero-arg callable returning an async context manager of ``AsyncSession``."""

_actor: ContextVar[Any] = ContextVar("pkg_database_actor", default=None)
_session: ContextVar[AsyncSession | None] = ContextVar("pkg_database_session", default=None)


def current_actor() -> Any:
    """The actor set by the innermost ``acting_as``, or None."""
    return _actor.get()


@contextmanager
def acting_as(actor: Any) -> Iterator[None]:
    """Attribute writes inside the block to ``actor`` (``creator_id`` / ``updater_id``)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def ambient_session() -> AsyncSession | None:
    """The session of the innermost open ``transaction()``, if any."""
    return _session.get()


def raise_translated(exc: BaseException) -> None:
    """Re-raise ``exc`` as the kit's typed error (cause kept) if it maps to one."""
    translated = translate_error(exc)
    if translated is not exc:
        raise translated from exc


@asynccontextmanager
async def _savepoint(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    async with session.begin_nested():
        yield session


@asynccontextmanager
async def _outer(provider: SessionProvider, autoflush: bool) -> AsyncIterator[AsyncSession]:
    async with provider() as session:
        session.sync_session.autoflush = autoflush
        token = _session.set(session)
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
        finally:
            _session.reset(token)


@asynccontextmanager
async def transaction(provider: SessionProvider, *, autoflush: bool = True) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, rollback on error; nested use is a SAVEPOINT.

    DAO calls inside the block (on any DAO) join its session.
    """
    current = _session.get()
    try:
        if current is not None:
            async with _savepoint(current) as session:
                yield session
        else:
            async with _outer(provider, autoflush) as session:
                yield session
    except Exception as exc:
        raise_translated(exc)
        raise


async def execute_transaction(
    provider: SessionProvider,
    callback: Callable[[AsyncSession], Any],
    *,
    autoflush: bool = True,
) -> Any:
    """Run ``await callback(session)`` in one transaction and return its result."""
    async with transaction(provider, autoflush=autoflush) as session:
        return await callback(session)
