"""How a DAO call finds its session: the given one, the ambient one, or its own.

A call with ``session=`` or inside ``transaction()`` joins that transaction (and
flushes after writes). Otherwise it opens a short session of its own: writes
COMMIT; reads never do (closing the session rolls the connection back; on PostgreSQL
they run in AUTOCOMMIT, which sends neither BEGIN nor COMMIT).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.context import SessionProvider, ambient_session, raise_translated
from pkg.database.limits import autocommit_reads

__all__ = ["SessionScope"]

_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


@dataclass(frozen=True, slots=True)
class SessionScope:
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
