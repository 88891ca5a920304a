"""A primary (and optional read) engine with its sessions, closed and reset safely.

Example::

    db = Database("postgresql+asyncpg://app@db/app", pool_size=10)
    async with db.session() as session:     # rolls back on error, never commits
        ...
        await session.commit()
    await db.close(timeout=5)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pkg.database.engine import mask_url, new_async_engine, new_async_session_maker
from pkg.database.exceptions import translate_error
from pkg.database.pool import pool_status

__all__ = ["CloseReport", "Database", "session_scope"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CloseReport:
    """What :meth:`Database.close` found and did."""

    checked_out: int
    forced: bool
    elapsed: float


@asynccontextmanager
async def session_scope(
    maker: async_sessionmaker[AsyncSession], *, autoflush: bool = True
) -> AsyncIterator[AsyncSession]:
    """Yield a session that rolls back on error and never commits by itself.

    SQLAlchemy and driver errors leave as the kit's typed errors, cause kept.
    """
    async with maker() as session:
        session.autoflush = autoflush
        try:
            yield session
        except BaseException as exc:
            await session.rollback()
            translated = translate_error(exc)
            if translated is not exc:
                raise translated from exc
            raise


class Database:
    """Owns the engines and session makers of one database (and its replica)."""

    def __init__(self, url: str | URL, *, read_url: str | URL | None = None, **engine_options: Any) -> None:
        self.url = url
        self.engine: AsyncEngine = new_async_engine(url, **engine_options)
        self.read_engine: AsyncEngine | None = (
            new_async_engine(read_url, **engine_options) if read_url else None
        )
        self.session_maker = new_async_session_maker(self.engine)
        self.read_session_maker = (
            new_async_session_maker(self.read_engine) if self.read_engine else self.session_maker
        )

    def session(self, autoflush: bool = True) -> Any:
        """An async context manager of a session on the primary."""
        return session_scope(self.session_maker, autoflush=autoflush)

    def read_session(self, autoflush: bool = True) -> Any:
        """A session on the replica when configured, else on the primary."""
        return session_scope(self.read_session_maker, autoflush=autoflush)

    def engines(self) -> list[AsyncEngine]:
        return [e for e in (self.engine, self.read_engine) if e is not None]

    def pool_status(self) -> dict[str, Any]:
        status = pool_status(self.engine)
        if self.read_engine is not None:
            status["read"] = pool_status(self.read_engine)
        return status

    async def close(self, timeout: float | None = None) -> CloseReport:
        """Dispose every engine within ``timeout`` seconds; report what was still in use."""
        started = time.monotonic()
        checked_out = sum(pool_status(e)["checked_out"] for e in self.engines())
        if checked_out:
            logger.warning(
                "closing %s with %d connection(s) still checked out",
                mask_url(self.url),
                checked_out,
            )
        forced = False
        for engine in self.engines():
            remaining = None if timeout is None else max(timeout - (time.monotonic() - started), 0.01)
            try:
                await asyncio.wait_for(engine.dispose(), remaining)
            except TimeoutError:
                forced = True
                logger.warning("dispose of %s timed out; dropping the pool", mask_url(engine.url))
                await engine.dispose(close=False)
        return CloseReport(checked_out, forced, time.monotonic() - started)

    def reset(self) -> None:
        """Forget the pools without touching their sockets (new loop or forked child)."""
        for engine in self.engines():
            engine.sync_engine.dispose(close=False)
