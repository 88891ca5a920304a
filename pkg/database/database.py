"""A primary (and optional read) engine with its sessions, closed and reset safely.

Example::

    db = Database("postgresql+asyncpg://app@db/app", pool_size=10)
    async with db.session() as session:     # rolls back on error, never commits
        ...
        await session.commit()
    await db.close(timeout=5)
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pkg.database.engine import new_async_engine, new_async_session_maker
from pkg.database.errors import translate_error
from pkg.database.lifecycle.autodispose import release_engine
from pkg.database.lifecycle.shutdown import CloseReport, close_engine
from pkg.database.pool import kit_pool_options, pool_status

__all__ = ["Database", "managed_session"]

logger = logging.getLogger(__name__)


@asynccontextmanager
async def managed_session(
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
        name = engine_options.pop("metrics_name", None)  # metrics label: primary, replica-0
        rname = f"{name}-replica-0" if name else "replica-0"
        self.engine: AsyncEngine = new_async_engine(
            url, **{**kit_pool_options(url), "metrics_name": name or "primary", **engine_options}
        )
        self.read_engine: AsyncEngine | None = (
            new_async_engine(
                read_url, **{**kit_pool_options(read_url), "metrics_name": rname, **engine_options}
            )
            if read_url
            else None
        )
        self.session_maker = new_async_session_maker(self.engine)
        self.read_session_maker = (
            new_async_session_maker(self.read_engine) if self.read_engine else self.session_maker
        )

    def session(self, autoflush: bool = True) -> Any:
        """An async context manager of a session on the primary."""
        return managed_session(self.session_maker, autoflush=autoflush)

    def read_session(self, autoflush: bool = True) -> Any:
        """A session on the replica when configured, else on the primary."""
        return managed_session(self.read_session_maker, autoflush=autoflush)

    def engines(self) -> list[AsyncEngine]:
        return [e for e in (self.engine, self.read_engine) if e is not None]

    def pool_status(self) -> dict[str, Any]:
        status = pool_status(self.engine)
        if self.read_engine is not None:
            status["read"] = pool_status(self.read_engine)
        return status

    async def close(self, timeout: float | None = None) -> CloseReport:
        """Close every engine from async code (app shutdown) within ``timeout`` seconds.

        Past the deadline the rest is closed hard; the report counts what was still
        checked out, names the owners, and says how many connections were forced.
        """
        started = time.monotonic()
        reports = []
        for engine in self.engines():
            remaining = None if timeout is None else max(timeout - (time.monotonic() - started), 0.01)
            reports.append(await close_engine(engine, remaining))
        return CloseReport.combine(reports, time.monotonic() - started)

    def release(self) -> None:
        """Close the engines from sync code, each on the loop that owns its connections.

        Use it where you cannot await (a forked child, before a new event loop). On the
        running owner loop the close is scheduled and finishes before that loop ends; in
        a forked child the parent's sockets are left alone.
        """
        for engine in self.engines():
            release_engine(engine)
