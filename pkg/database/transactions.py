"""Transactions, and how a DAO or builder call finds its session.

``transaction(provider)`` opens one transaction that every DAO call inside joins::

    async with transaction(Session) as session:
        await users.create(...)
        await orders.create(...)               # same session, same COMMIT

A call with ``session=`` or inside ``transaction()`` joins that transaction (and
flushes after writes). Otherwise :class:`CallSession` opens a short session of its
own: writes COMMIT; reads never do (closing the session rolls the connection back; on
PostgreSQL they run in AUTOCOMMIT, which sends neither BEGIN nor COMMIT).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.errors import translate_error
from pkg.database.query.limits import autocommit_reads

__all__ = [
    "CallSession",
    "SessionProvider",
    "ambient_session",
    "execute_transaction",
    "raise_translated",
    "transaction",
]

logger = logging.getLogger(__name__)

SessionProvider = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Any zero-arg callable returning an async context manager of ``AsyncSession``."""

_session: ContextVar[AsyncSession | None] = ContextVar("pkg_database_session", default=None)


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


_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


@dataclass(frozen=True, slots=True)
class CallSession:
    """Resolves the session for one DAO or builder call from a session provider."""

    provider: SessionProvider

    def joins(self, session: AsyncSession | None) -> bool:
        """True when a call with ``session`` would join an existing transaction."""
        return session is not None or ambient_session() is not None

    @asynccontextmanager
    async def read(
        self, session: AsyncSession | None = None, *, autocommit: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """A session to read with; never COMMITs.

        Its own session runs in AUTOCOMMIT where that saves round trips (PostgreSQL):
        the same per-statement snapshot as READ COMMITTED, without BEGIN / ROLLBACK.
        """
        joined = session if session is not None else ambient_session()
        try:
            if joined is not None:
                yield joined
            else:
                async with self.provider() as own:
                    if autocommit and autocommit_reads(own.get_bind().dialect.name):
                        await own.connection(execution_options=_AUTOCOMMIT)
                    yield own
        except Exception as exc:
            raise_translated(exc)
            raise

    @asynccontextmanager
    async def write(self, session: AsyncSession | None = None) -> AsyncIterator[AsyncSession]:
        """A session to write with; flushes when joined, COMMITs when it is its own."""
        joined = session if session is not None else ambient_session()
        try:
            if joined is not None:
                yield joined
                await joined.flush()
            else:
                async with self.provider() as own:
                    yield own
                    await own.commit()
        except Exception as exc:
            raise_translated(exc)
            raise
