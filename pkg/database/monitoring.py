"""Slow-query logging and per-engine statement counters.

Attached by :func:`new_async_engine`; read the counters with :func:`query_stats`::

    stats = query_stats(engine)
    print(stats.statements, stats.slow_statements, stats.total_time)

Slow statements log at WARNING on ``pkg.database.slow_query`` with the elapsed
milliseconds and the SQL text. Bound parameter values are redacted unless the
engine was created with ``log_parameters=True``.

Timing hooks the engine's dialect-level ``do_execute`` / ``do_executemany`` /
``do_execute_no_params`` events (``via="dialect"``, the default): one call per statement
around the driver call. The engine-level ``before_cursor_execute`` /
``after_cursor_execute`` pair (``via="cursor"``) measures the same span but switches
SQLAlchemy onto its per-statement event path, which cost 5-10 % on a primary-key lookup
loop against 1-3 % here (``bench/bench_events.py``, ``bench/RESULTS.md``).

The same single timing point feeds metrics: while a metrics hook exists
(:mod:`pkg.database.metrics`) the monitor hands each statement's duration, outcome and
error to its ``metrics`` sink; otherwise ``metrics`` is None and costs one attribute check.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Literal, Protocol

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine

__all__ = ["QueryMonitor", "QueryObserver", "QueryStats", "attach_query_monitor", "query_stats"]

slow_query_logger = logging.getLogger("pkg.database.slow_query")

_monitors: weakref.WeakKeyDictionary[Engine, QueryMonitor] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class QueryStats:
    """A snapshot of one engine's counters; ``total_time`` is in seconds."""

    statements: int
    slow_statements: int
    total_time: float


class QueryObserver(Protocol):
    """Receives each timed statement (``exc``: what it raised, None when it succeeded)."""

    def query(self, statement: str, duration: float, slow: bool, exc: BaseException | None) -> None: ...


class QueryMonitor:
    """Times every cursor execution of one engine and logs the slow ones."""

    metrics: QueryObserver | None = None  # set while metrics hooks exist

    def __init__(
        self,
        threshold: float | None,
        *,
        log_parameters: bool = False,
        max_sql_length: int = 2000,
    ) -> None:
        self.threshold = threshold
        self.log_parameters = log_parameters
        self.max_sql_length = max_sql_length
        self.statements = 0
        self.slow_statements = 0
        self.total_time = 0.0

    def snapshot(self) -> QueryStats:
        return QueryStats(self.statements, self.slow_statements, self.total_time)

    def reset(self) -> None:
        self.statements = self.slow_statements = 0
        self.total_time = 0.0

    def record(
        self, started: float, statement: str, params: Any, many: bool, exc: BaseException | None = None
    ) -> None:
        """Count one finished (or failed: ``exc``) statement and log it when slow."""
        elapsed = perf_counter() - started
        self.statements += 1
        self.total_time += elapsed
        threshold = self.threshold
        slow = threshold is not None and elapsed >= threshold
        if slow:
            self.slow_statements += 1
            self._log_slow(elapsed, statement, params, many)
        metrics = self.metrics
        if metrics is not None:
            metrics.query(statement, elapsed, slow, exc)

    # -- via="dialect": wrap the driver call itself -------------------------------------
    def bind(self, dialect: Dialect) -> None:
        self._do_execute = dialect.do_execute
        self._do_executemany = dialect.do_executemany
        self._do_execute_no_params = dialect.do_execute_no_params

    def do_execute(self, cursor: Any, statement: str, params: Any, context: Any) -> bool:
        started = perf_counter()
        try:
            self._do_execute(cursor, statement, params, context)
        except BaseException as exc:
            self.record(started, statement, params, False, exc)
            raise
        self.record(started, statement, params, False)
        return True  # handled: SQLAlchemy does not call the dialect again

    def do_executemany(self, cursor: Any, statement: str, params: Any, context: Any) -> bool:
        started = perf_counter()
        try:
            self._do_executemany(cursor, statement, params, context)
        except BaseException as exc:
            self.record(started, statement, params, True, exc)
            raise
        self.record(started, statement, params, True)
        return True

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any) -> bool:
        started = perf_counter()
        try:
            self._do_execute_no_params(cursor, statement, context)
        except BaseException as exc:
            self.record(started, statement, None, False, exc)
            raise
        self.record(started, statement, None, False)
        return True

    # -- via="cursor": engine-level cursor events ----------------------------------------
    def before(
        self, conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        # The execution context lives exactly as long as the statement: no cleanup on error.
        context._kit_started = perf_counter()

    def after(
        self, conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        started = getattr(context, "_kit_started", None)
        if started is not None:
            self.record(started, statement, params, many)

    def _log_slow(self, elapsed: float, statement: str, params: Any, many: bool) -> None:
        sql = " ".join(statement.split())
        if len(sql) > self.max_sql_length:
            sql = f"{sql[: self.max_sql_length]}... [{len(sql)} chars]"
        batch = f" executemany x{len(params)}" if many and params is not None else ""
        slow_query_logger.warning(
            "slow query %.1f ms%s: %s | params: %s",
            elapsed * 1000.0,
            batch,
            sql,
            self._describe_params(params, many),
        )

    def _describe_params(self, params: Any, many: bool) -> str:
        if not params:
            return "none"
        if self.log_parameters:
            text = repr(params)
            return text if len(text) <= self.max_sql_length else text[: self.max_sql_length] + "..."
        first = params[0] if many and isinstance(params, list | tuple) and params else params
        count = len(first) if isinstance(first, dict | list | tuple) else 1
        return f"[{count} redacted]"


def attach_query_monitor(
    engine: Engine,
    threshold: float | None,
    *,
    log_parameters: bool = False,
    max_sql_length: int = 2000,
    via: Literal["dialect", "cursor"] = "dialect",
) -> QueryMonitor:
    """Attach timing events to a (sync) engine; at most one monitor per engine."""
    existing = _monitors.get(engine)
    if existing is not None:
        existing.threshold = threshold
        existing.log_parameters = log_parameters
        return existing
    monitor = QueryMonitor(threshold, log_parameters=log_parameters, max_sql_length=max_sql_length)
    if via == "dialect":
        monitor.bind(engine.dialect)
        event.listen(engine, "do_execute", monitor.do_execute)
        event.listen(engine, "do_executemany", monitor.do_executemany)
        event.listen(engine, "do_execute_no_params", monitor.do_execute_no_params)
    else:
        event.listen(engine, "before_cursor_execute", monitor.before)
        event.listen(engine, "after_cursor_execute", monitor.after)
    _monitors[engine] = monitor
    return monitor


def query_stats(engine: Any) -> QueryStats:
    """Counters of an engine (sync or async) made by the kit; zeros when unmonitored."""
    sync_engine = getattr(engine, "sync_engine", engine)
    monitor = _monitors.get(sync_engine)
    return monitor.snapshot() if monitor is not None else QueryStats(0, 0, 0.0)
