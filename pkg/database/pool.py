"""Pool introspection: one dict shape for every pool class SQLAlchemy may pick.

:class:`KitAsyncQueuePool` (used by :class:`~pkg.database.lifecycle.Database` for
server databases) also counts tasks waiting for a connection and cumulative checkout
timeouts; other pools report 0 for both. While metrics hooks exist
(:mod:`pkg.database.metrics`) its ``observer`` also hears each request start and stop
waiting, how long it waited, and each timeout.

Example::

    status = pool_status(engine)
    assert status["checked_out"] == 0 and status["timeouts"] == 0
"""

from __future__ import annotations

from time import perf_counter
from typing import Any, Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

__all__ = ["KitAsyncQueuePool", "PoolObserver", "is_memory_sqlite", "kit_pool_options", "pool_status"]


class PoolObserver(Protocol):
    """Hears the queue of a :class:`KitAsyncQueuePool` (the metrics' engine source)."""

    def waiting(self, delta: int) -> None: ...

    def waited(self, record: ConnectionPoolEntry, seconds: float) -> None: ...

    def timed_out(self, seconds: float) -> None: ...


class KitAsyncQueuePool(AsyncAdaptedQueuePool):
    """An :class:`AsyncAdaptedQueuePool` that counts waiters and checkout timeouts.

    The timeout count and the observer survive ``engine.dispose()`` (the pool is recreated).
    """

    waiters = 0
    timeouts = 0
    observer: PoolObserver | None = None

    def _do_get(self) -> ConnectionPoolEntry:
        observer = self.observer
        if observer is not None:
            return self._observed_get(observer)
        self.waiters += 1
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            self.timeouts += 1
            raise
        finally:
            self.waiters -= 1

    def _observed_get(self, observer: PoolObserver) -> ConnectionPoolEntry:
        """:meth:`_do_get`, timed, with the observer told (wait or timeout; pending +1/-1 only
        when the request must queue: nothing idle and no overflow left, as QueuePool decides)."""
        self.waiters += 1
        queued = -1 < self._max_overflow <= self._overflow and self._pool.empty()  # cheap test first
        if queued:
            observer.waiting(1)
        started = perf_counter()
        try:
            record = super()._do_get()
        except sa_exc.TimeoutError:
            self.timeouts += 1
            observer.timed_out(perf_counter() - started)
            raise
        finally:
            self.waiters -= 1
            if queued:
                observer.waiting(-1)
        observer.waited(record, perf_counter() - started)
        return record

    def recreate(self) -> KitAsyncQueuePool:
        fresh = super().recreate()
        assert isinstance(fresh, KitAsyncQueuePool)
        fresh.timeouts = self.timeouts
        fresh.observer = self.observer
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
