"""The application's database: one process-wide :class:`Database`, built from settings.

Example::

    await init_async_db()                  # idempotent
    async with get_session() as session:   # rolls back on error; you commit
        ...
    await close_async_db()                 # safe to call twice
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from internal.config.load_config import Settings, get_settings
from pkg.database import CloseReport, Database, mask_url
from pkg.database.errors import DatabaseNotInitializedError, ReplicaUnavailableError
from pkg.database.lifecycle import configure_leak_tracking, set_shutdown_timeout, set_signal_handling

__all__ = [
    "close_async_db",
    "get_database",
    "get_engine",
    "get_read_session",
    "get_session",
    "init_async_db",
    "pool_status",
    "refresh_replicas",
    "reset_async_db",
]

logger = logging.getLogger(__name__)

_db: Database | None = None
_settings: Settings | None = None
_lock = threading.Lock()


def _build(settings: Settings) -> Database:
    return Database(
        settings.database_url,
        read_urls=settings.read_replicas,
        routing=settings.routing_options(),
        **settings.engine_options(),
    )


def _apply_runtime_settings(settings: Settings, handle_signals: bool | None) -> None:
    """Shutdown bound, leak tracking and signal handling, from settings (or the override)."""
    set_shutdown_timeout(settings.db_shutdown_timeout)
    configure_leak_tracking(
        enabled=settings.db_leak_tracking, threshold=settings.db_leak_threshold, plumbing=(__name__,)
    )
    set_signal_handling(settings.db_handle_signals if handle_signals is None else handle_signals)


async def init_async_db(settings: Settings | None = None, *, handle_signals: bool | None = None) -> Database:
    """Create the engine once; later and concurrent calls return the same one.

    ``handle_signals`` overrides ``DB_HANDLE_SIGNALS`` (False: leave SIGTERM/SIGINT alone).
    """
    global _db, _settings
    with _lock:  # no await inside: concurrent callers on one loop cannot interleave
        built = _db is None
        if _db is None:
            _settings = settings or get_settings()
            _apply_runtime_settings(_settings, handle_signals)
            _db = _build(_settings)
            logger.info("database initialised: %s", mask_url(_settings.database_url))
        db = _db
    if built and _settings is not None and db.replicas:
        await _check_replicas(db, _settings)
    return db


async def _check_replicas(db: Database, settings: Settings) -> None:
    """Probe the replicas once at start: down is a WARNING, or an error with DB_READ_REQUIRED."""
    try:
        await db.check_replicas(required=settings.db_read_required)
    except ReplicaUnavailableError:
        await close_async_db()
        raise


def get_database() -> Database:
    """The initialised database, or :class:`DatabaseNotInitializedError`."""
    if _db is None:
        raise DatabaseNotInitializedError(
            "the database is not initialised: call `await init_async_db()` first"
        )
    return _db


def get_engine() -> AsyncEngine:
    """The primary engine."""
    return get_database().engine


class _PrimarySessions:
    """``get_session()``: a session on the primary: rolls back on error, never commits by itself.

    ``session_maker`` says where its sessions come from, so a DAO's own calls may run
    without one (:mod:`pkg.database.direct`).
    """

    def __call__(self, autoflush: bool = True) -> AbstractAsyncContextManager[AsyncSession]:
        return get_database().session(autoflush=autoflush)  # type: ignore[no-any-return]

    @property
    def session_maker(self) -> async_sessionmaker[AsyncSession]:
        return get_database().session_maker


get_session = _PrimarySessions()


@asynccontextmanager
async def get_read_session(autoflush: bool = True) -> AsyncIterator[AsyncSession]:
    """A read session: on a replica (``DB_READ_URL`` / ``DB_READ_URLS``) chosen by weight,
    health and read-your-writes, read-only, one engine for its life; without replicas a
    plain session on the primary."""
    async with get_database().read_session(autoflush=autoflush) as session:
        yield session


async def close_async_db(timeout: float | None = None) -> CloseReport | None:
    """Dispose the engines within ``timeout`` (default ``DB_SHUTDOWN_TIMEOUT``); twice is fine."""
    global _db
    with _lock:
        db, _db = _db, None
    if db is None:
        return None
    if timeout is None and _settings is not None:
        timeout = _settings.db_shutdown_timeout
    report = await db.close(timeout)
    logger.info("database closed in %.3fs (checked out at close: %d)", report.elapsed, report.checked_out)
    return report


def reset_async_db() -> None:
    """Forget the engine; its connections are closed on the loop that owns them.

    Called on the running owner loop the close is scheduled there (and finishes before
    that loop ends); in a forked child the parent's sockets are left alone. The next
    :func:`init_async_db` builds a fresh engine, e.g. for a new event loop.
    """
    global _db
    with _lock:
        db, _db = _db, None
    if db is not None:
        db.release()


async def refresh_replicas() -> None:
    """Probe the replicas now if the last probe is older than ``DB_REPLICA_PROBE_INTERVAL``."""
    await get_database().check_replicas(due_only=True)


def pool_status() -> dict[str, Any]:
    """Pool counters of the primary; with replicas also ``engines``: each with state and lag."""
    return get_database().pool_status()
