"""Pool introspection: one dict shape for every pool class SQLAlchemy may pick.

:class:`KitAsyncQueuePool` (used by :class:`~pkg.database.lifecycle.Database` for
server databases) also counts tasks waiting for a connection and cumulative checkout
timeouts; other pools report 0 for both.

Example::

    status = pool_status(engine)
    assert status["checked_out"] == 0 and status["timeouts"] == 0
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

__all__ = ["KitAsyncQueuePool", "is_memory_sqlite", "kit_pool_options", "pool_status"]


class KitAsyncQueuePool(AsyncAdaptedQueuePool):
    """An :class:`AsyncAdaptedQueuePool` that counts waiters and checkout timeouts.

    The timeout count survives ``engine.dispose()`` (the pool is recreated).
    """

    waiters = 0
    timeouts = 0

    def _do_get(self) -> ConnectionPoolEntry:
        self.waiters += 1
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            self.timeouts += 1
            raise
        finally:
            self.waiters -= 1

    def recreate(self) -> KitAsyncQueuePool:
        fresh = super().recreate()
        assert isinstance(fresh, KitAsyncQueuePool)
        fresh.timeouts = self.timeouts
        return fresh


def is_memory_sqlite(url: str | URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database: the one rule the kit uses.

    ``sqlite://``, ``sqlite:///:memory:`` and URI databases with ``mode=memory``
    (``sqlite+aiosqlite:///file:m?mode=memory&uri=true``) are; a file whose name merely
    contains "memory" (``sqlite:////tmp/memory_notes.db``) is not. Such a database lives
    in one connection, so it gets a single-connection pool rather than a queue pool.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return False
    return (sa_url.database or "") in ("", ":memory:") or sa_url.query.get("mode") == "memory"


def kit_pool_options(url: str | URL) -> dict[str, Any]:
    """Engine options selecting :class:`KitAsyncQueuePool` where a queue pool applies."""
    return {} if is_memory_sqlite(url) else {"poolclass": KitAsyncQueuePool}


def _call(pool: Any, name: str) -> int:
    method = getattr(pool, name, None)
    return int(method()) if callable(method) else 0


def pool_status(engine: AsyncEngine) -> dict[str, Any]:
    """Size, checked-out, overflow, idle, waiters and cumulative checkout timeouts of ``engine``.

    Example: ``pool_status(engine)["checked_out"]`` is 0 when nothing leaked.
    """
    pool = engine.sync_engine.pool
    return {
        "pool": type(pool).__name__,
        "size": _call(pool, "size"),
        "checked_out": _call(pool, "checkedout"),
        "overflow": max(_call(pool, "overflow"), 0),
        "idle": _call(pool, "checkedin"),
        "waiters": int(getattr(pool, "waiters", 0)),
        "timeouts": int(getattr(pool, "timeouts", 0)),
    }
