"""How a DAO call finds its session: the given one, the ambient one, or its own.

A call with ``session=`` or inside ``transaction()`` joins that transaction (and
flushes after writes). Otherwise it opens a short session of its own: writes
COMMIT; reads never do (closing the session rolls the connection back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.context import SessionProvider, ambient_session, raise_translated

__all__ = ["SessionScope"]


@dataclass(frozen=True, slots=True)
class SessionScope:
    """Resolves the session for one DAO or builder call from a session provider."""

    provider: SessionProvider

    def joins(self, session: AsyncSession | None) -> bool:
        """True when a call with ``session`` would join an existing transaction."""
        return session is not None or ambient_session() is not None

    @asynccontextmanager
    async def read(self, session: AsyncSession | None = None) -> AsyncIterator[AsyncSession]:
        """A session to read with; never COMMITs."""
        joined = session if session is not None else ambient_session()
        try:
            if joined is not None:
                yield joined
            else:
                async with self.provider() as own:
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
