"""Pool introspection: one dict shape for every pool class SQLAlchemy may pick.

:class:`KitAsyncQueuePool` (used by :class:`~pkg.database.lifecycle.Database` for
server databases) also counts tasks waiting for a connection and cumulative checkout
timeouts; other pools report 0 for both. While metrics hooks exist
(:mod:`pkg.database.metrics`) its ``observer`` also hears each request start and stop
waiting, how long it waited, each timeout, and each checkin: called by the pool itself, so
the metrics need no SQLAlchemy ``checkin`` listener.

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
    """Hears the queue and the checkins of a :class:`KitAsyncQueuePool` (the metrics' engine
    source); ``waits`` gets each checked-out entry's queue wait, by ``id(entry)``."""

    waits: dict[int, float]

    def waiting(self, delta: int) -> None: ...

    def timed_out(self, seconds: float) -> None: ...

    def checked_in(self, record: ConnectionPoolEntry) -> None: ...


class KitAsyncQueuePool(AsyncAdaptedQueuePool):
    """An :class:`AsyncAdaptedQueuePool` that counts waiters and checkout timeouts.

    The timeout count and the observer survive ``engine.dispose()`` (the pool is recreated).
    While an observer is set, the pool's ``_do_get`` and ``_return_conn`` are the observed ones
    (instance attributes); without one, the plain ones run, at no extra cost.
    """

    waiters = 0
    timeouts = 0
    _observer: PoolObserver | None = None
    _OBSERVED = {"_do_get": "_observed_do_get", "_return_conn": "_observed_return_conn"}

    @property
    def observer(self) -> PoolObserver | None:
        return self._observer

    @observer.setter
    def observer(self, observer: PoolObserver | None) -> None:
        self._observer = observer
        for name, observed in self._OBSERVED.items():
            if observer is None:
                self.__dict__.pop(name, None)
            else:
                self.__dict__[name] = getattr(self, observed)

    def _do_get(self) -> ConnectionPoolEntry:
        self.waiters += 1
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            self.timeouts += 1
            raise
        finally:
            self.waiters -= 1

    def _observed_do_get(self) -> ConnectionPoolEntry:
        """:meth:`_do_get`, timed, with the observer told (wait or timeout; pending +1/-1 only
        when the request must queue: nothing idle and no overflow left, as QueuePool decides)."""
        observer = self._observer
        assert observer is not None
        self.waiters += 1
        queued = -1 < self._max_overflow <= self._overflow and self._pool.empty()  # cheap test first
        if queued:
            observer.waiting(1)
        started = perf_counter()
        try:
            record = AsyncAdaptedQueuePool._do_get(self)
        except sa_exc.TimeoutError:
            self.timeouts += 1
            observer.timed_out(perf_counter() - started)
            raise
        finally:
            self.waiters -= 1
            if queued:
                observer.waiting(-1)
        observer.waits[id(record)] = perf_counter() - started
        return record

    def _observed_return_conn(self, record: ConnectionPoolEntry) -> None:
        """A checkin (also of a checkout that failed after ``_do_get``): the observer hears it
        after the ``checkin`` listeners, before the record is queued or closed as overflow."""
        observer = self._observer
        if observer is not None:
            observer.checked_in(record)
        self._do_return_conn(record)

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
