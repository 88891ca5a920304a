"""One engine's event source: SQLAlchemy pool events, the kit pool's queue timing and the
statement monitor's timing, turned into :mod:`pkg.database.metrics.events`.

Statements are timed once, by :class:`~pkg.database.monitoring.QueryMonitor` (the dialect
``do_execute`` events that also feed the slow-query log); this module adds no second
statement event path. On a :class:`~pkg.database.pool.KitAsyncQueuePool` (every kit engine
but in-memory SQLite and a user-given ``poolclass``) the pool itself reports checkins, the
wait in the queue, pending requests and timeouts to this observer; the SQLAlchemy listeners
are ``connect``, ``checkout`` (SQLAlchemy dispatches it anyway for the kit's liveness check
and leak tracker, and wrapping ``connect()`` instead measured costlier), ``close``,
``detach``, ``invalidate``, ``soft_invalidate``. Any other pool also gets a ``checkin``
listener, with the same bookkeeping behind it.

Connections are followed per pool entry, so the counts stay exact when a connection dies
in use (killed backend: checked in, then closed), is recycled or invalidated at checkout
(closed, then created), or is detached. Connections an engine opened before metrics were
switched on are adopted when first seen (``ConnectionCreated(adopted=True)``).

The hot path (checkout, checkin, statement) calls each hook's per-engine sink
(:func:`~pkg.database.metrics.hooks.bind_hook`), rebound whenever hooks change; the rest are
typed events for every hook. A sink that raises is logged and never breaks the call.
"""

from __future__ import annotations

import logging
import weakref
from time import perf_counter
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool, QueuePool, SingletonThreadPool, StaticPool

from pkg.database.errors import ConnectionLostError
from pkg.database.metrics.classify import classify_operation, error_class, outcome_of
from pkg.database.metrics.events import (
    ConnectionCheckedIn,
    ConnectionCheckedOut,
    ConnectionClosed,
    ConnectionCreated,
    ConnectionInvalidated,
    InvalidationReason,
    MetricsHook,
    Operation,
    Outcome,
    PendingRequests,
    PoolCapacity,
    PoolTimedOut,
)
from pkg.database.metrics.hooks import EngineSink, bind_hook, emit_metrics_event, register_engine_metrics
from pkg.database.monitoring import QueryMonitor
from pkg.database.pool import KitAsyncQueuePool

__all__ = ["EngineMetrics", "pool_capacity", "track_engine"]

_KIT_POOL_EVENTS = ("connect", "checkout", "close", "detach", "invalidate", "soft_invalidate")
_POOL_EVENTS = (*_KIT_POOL_EVENTS, "checkin")  # a pool that does not report its checkins
_emit = emit_metrics_event
_CACHED_OPERATIONS = 512  # distinct statement strings classified once (cleared when full)
_CACHED_LENGTH = 4096  # longer statements are classified every time, not kept
logger = logging.getLogger("pkg.database.metrics")


def pool_capacity(pool: Pool) -> int:
    """The most connections ``pool`` opens: size + overflow (size alone when unbounded)."""
    if isinstance(pool, QueuePool):
        return pool.size() + max(pool._max_overflow, 0)
    return 1 if isinstance(pool, StaticPool | SingletonThreadPool) else 0


class EngineMetrics:
    """Pool and statement events of one engine, as metrics events under one ``engine`` label."""

    def __init__(self, sync_engine: Engine, name: str, monitor: QueryMonitor | None) -> None:
        self.name = name
        self.system = sync_engine.dialect.name
        self.enabled = False
        self._engine = weakref.ref(sync_engine)
        self._monitor = monitor
        self._dialect = sync_engine.dialect
        dbapi = getattr(sync_engine.dialect, "loaded_dbapi", None)
        self._driver_error: type[BaseException] | None = getattr(dbapi, "Error", None)
        self._open: dict[int, float] = {}  # id(pool entry) -> checkout start; 0.0 while idle
        self._dying: dict[int, float] = {}  # closed while checked out -> checkout start
        self.waits: dict[int, float] = {}  # id(pool entry) -> its queue wait, filled by the kit pool
        self._capacity = 0
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._sinks: tuple[EngineSink, ...] = ()
        self._operations: dict[str, Operation] = {}
        self._listening: tuple[str, ...] = ()

    def rebind(self, hooks: tuple[MetricsHook, ...]) -> None:
        """Bind the hot path to ``hooks`` (called by the registry whenever they change)."""
        self._sinks = tuple(bind_hook(hook, self.name, self.system) for hook in hooks)

    @staticmethod
    def _failed(sink: EngineSink, what: str) -> None:
        logger.exception("metrics hook %r failed on %s", sink, what)

    # -- switching ---------------------------------------------------------------------
    def enable(self) -> None:
        engine = self._engine()
        if engine is None or self.enabled:
            return
        self.enabled = True
        self._listening = _KIT_POOL_EVENTS if isinstance(engine.pool, KitAsyncQueuePool) else _POOL_EVENTS
        for name in self._listening:
            event.listen(engine, name, getattr(self, f"on_{name}"))
        self._set_observer(engine.pool, self)
        if self._monitor is not None:
            self._monitor.metrics = self
        self._capacity = pool_capacity(engine.pool)
        _emit(PoolCapacity(self.name, self._capacity))
        self._finalizer = weakref.finalize(engine, self._engine_gone)

    def disable(self) -> None:
        engine = self._engine()
        if not self.enabled:
            return
        self.enabled = False
        if self._finalizer is not None:
            self._finalizer.detach()
        if engine is not None:
            for name in self._listening:
                event.remove(engine, name, getattr(self, f"on_{name}"))
            self._set_observer(engine.pool, None)
        self._listening = ()
        if self._monitor is not None:
            self._monitor.metrics = None
        self._engine_gone()

    def forget_connections(self) -> None:
        """Drop the per-connection bookkeeping (a forked child: the pool is a fresh one)."""
        self._open.clear()
        self._dying.clear()
        self.waits.clear()

    def _engine_gone(self) -> None:
        _emit(PoolCapacity(self.name, -self._capacity))
        self._capacity = 0
        self.forget_connections()

    @staticmethod
    def _set_observer(pool: Pool, observer: EngineMetrics | None) -> None:
        if isinstance(pool, KitAsyncQueuePool):
            pool.observer = observer

    # -- KitAsyncQueuePool observer -----------------------------------------------------
    def waiting(self, delta: int) -> None:
        _emit(PendingRequests(self.name, delta))

    def timed_out(self, seconds: float) -> None:
        _emit(PoolTimedOut(self.name, seconds))

    # -- pool events --------------------------------------------------------------------
    def on_connect(self, dbapi_connection: Any, record: Any) -> None:
        self._open[id(record)] = 0.0
        _emit(ConnectionCreated(self.name))

    def on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        key = id(record)
        if key not in self._open:
            _emit(ConnectionCreated(self.name, adopted=True))
        self._open[key] = perf_counter()
        wait = self.waits.pop(key, 0.0)
        for sink in self._sinks:
            try:
                sink.checked_out(wait)
            except Exception:
                self._failed(sink, ConnectionCheckedOut.__name__)

    def checked_in(self, record: Any) -> None:
        """A record came back (the kit pool's call, or the ``checkin`` listener of another pool)."""
        key = id(record)
        if self._dying and key in self._dying:  # died in use: back, then gone
            self._report_checkin(perf_counter() - self._dying.pop(key))
            _emit(ConnectionClosed(self.name))
            return
        started = self._open.get(key)
        if started:  # None: unknown; 0.0: not checked out
            self._open[key] = 0.0
            use = perf_counter() - started
            for sink in self._sinks:
                try:
                    sink.checked_in(use)
                except Exception:
                    self._failed(sink, ConnectionCheckedIn.__name__)

    def on_checkin(self, dbapi_connection: Any, record: Any) -> None:
        self.checked_in(record)

    def _report_checkin(self, use: float) -> None:
        for sink in self._sinks:
            try:
                sink.checked_in(use)
            except Exception:
                self._failed(sink, ConnectionCheckedIn.__name__)

    def on_close(self, dbapi_connection: Any, record: Any) -> None:
        started = self._open.pop(id(record), None)
        if started:
            self._dying[id(record)] = started  # counted at its checkin
        elif started is not None:
            _emit(ConnectionClosed(self.name))

    def on_detach(self, dbapi_connection: Any, record: Any) -> None:
        started = self._open.pop(id(record), None)
        if started:
            self._report_checkin(perf_counter() - started)
        if started is not None:
            _emit(ConnectionClosed(self.name))

    def on_invalidate(self, dbapi_connection: Any, record: Any, exc: BaseException | None) -> None:
        _emit(ConnectionInvalidated(self.name, self._reason(exc)))

    def on_soft_invalidate(self, dbapi_connection: Any, record: Any, exc: BaseException | None) -> None:
        _emit(ConnectionInvalidated(self.name, "soft"))

    def _reason(self, exc: BaseException | None) -> InvalidationReason:
        if exc is None:
            return "explicit"
        if isinstance(exc, sa_exc.DisconnectionError):
            return "disconnect"
        return "disconnect" if self._error(exc) == ConnectionLostError.__name__ else "error"

    def _error(self, exc: BaseException) -> str:
        """The kit's error class; a driver error the dialect calls a disconnect is a lost connection."""
        driver = self._driver_error
        if driver is None or not isinstance(exc, driver):
            return error_class(exc)
        disconnect = bool(self._dialect.is_disconnect(exc, None, None))  # type: ignore[arg-type]
        return error_class(exc, driver, disconnect=disconnect)

    # -- QueryMonitor sink --------------------------------------------------------------
    def query(self, statement: str, duration: float, slow: bool, exc: BaseException | None) -> None:
        operation = self._operations.get(statement)
        if operation is None:
            operation = self._classify(statement)
        if exc is None:
            outcome: Outcome = "ok"
            error = None
        else:
            outcome = outcome_of(exc)
            error = self._error(exc) if outcome == "error" else None
        for sink in self._sinks:
            try:
                sink.query(operation, outcome, duration, slow, error)
            except Exception:
                self._failed(sink, "QueryExecuted")

    def _classify(self, statement: str) -> Operation:
        """:func:`classify_operation`, remembered per statement string (the same few repeat)."""
        operation = classify_operation(statement)
        if len(statement) <= _CACHED_LENGTH:
            if len(self._operations) >= _CACHED_OPERATIONS:
                self._operations = {}
            self._operations[statement] = operation
        return operation


def track_engine(sync_engine: Engine, name: str, monitor: QueryMonitor | None = None) -> EngineMetrics:
    """Make ``sync_engine`` report metrics under ``name`` whenever a hook exists."""
    metrics = EngineMetrics(sync_engine, name, monitor)
    register_engine_metrics(sync_engine, metrics)
    return metrics
