"""Prometheus exporter (the ``prometheus`` extra): a metrics hook writing ``kit_db_*`` series.

Example::

    from pkg.database.metrics import install_prometheus, render_prometheus

    install_prometheus()                      # once, before or after engines exist
    body, content_type = render_prometheus()  # what GET /metrics returns

Several processes (uvicorn ``--workers``, Celery prefork children, gunicorn): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory *before* the processes start (and
before ``prometheus_client`` is imported); each process writes its own files there and
:func:`render_prometheus` sums them, so one scrape of any process covers all of them.
Gauges (connections, max, pending, replica lag) count live processes only: call
:func:`prometheus_process_exited` when a process ends (the app and worker do).

Series (label ``engine`` everywhere, nothing else unbounded; no SQL, tables or URLs):

============================================  ======================================
``kit_db_pool_connections{state}``            gauge: idle / used connections
``kit_db_pool_max_connections``               gauge: pool size + max overflow
``kit_db_pool_pending_requests``              gauge: requests waiting for a connection
``kit_db_pool_timeouts_total``                counter: PoolTimeoutError
``kit_db_pool_wait_seconds``                  histogram: wait for a connection
``kit_db_pool_use_seconds``                   histogram: checkout to checkin
``kit_db_pool_connections_created_total``     counter
``kit_db_pool_invalidations_total{reason}``   counter: disconnect / error / explicit / soft
``kit_db_query_duration_seconds{operation,outcome}``  histogram
``kit_db_slow_queries_total{operation}``      counter: past the slow-query threshold
``kit_db_errors_total{error}``                counter: the kit's error class
``kit_db_routing_decisions_total{target}``    counter (read replicas)
``kit_db_replica_lag_seconds``                gauge (read replicas)
============================================  ======================================
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

from pkg.database.metrics import events as ev
from pkg.database.metrics.classify import POOL_TIMEOUT_ERROR
from pkg.database.metrics.hooks import add_metrics_hook, remove_metrics_hook

__all__ = [
    "MULTIPROC_ENV",
    "PrometheusMetrics",
    "install_prometheus",
    "multiprocess_mode",
    "prometheus_process_exited",
    "render_prometheus",
    "reset_prometheus",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)
USE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

_installed: dict[int, PrometheusMetrics] = {}
_lock = threading.Lock()
_fork_hook = {"installed": False}


def multiprocess_mode() -> bool:
    """Whether ``PROMETHEUS_MULTIPROC_DIR`` is set (values live in per-process files)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class PrometheusMetrics:
    """The hook: each event updates its series; label children are cached per engine."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        self._collectors: list[Any] = []
        self._children: dict[tuple[Any, ...], Any] = {}
        self._pools: dict[str, tuple[Any, Any, Any, Any]] = {}
        self._capacity: dict[str, int] = {}  # engine -> pool capacity of this process
        self.connections = self._gauge("pool_connections", "Open connections by state", ["engine", "state"])
        self.max = self._gauge("pool_max_connections", "Most connections the pool opens", ["engine"])
        self.pending = self._gauge("pool_pending_requests", "Requests waiting for a connection", ["engine"])
        self.timeouts = self._counter("pool_timeouts", "Checkouts that timed out", ["engine"])
        self.wait = self._histogram("pool_wait_seconds", "Wait for a connection", ["engine"], WAIT_BUCKETS)
        self.use = self._histogram("pool_use_seconds", "Checkout to checkin", ["engine"], USE_BUCKETS)
        self.created = self._counter("pool_connections_created", "Connections opened", ["engine"])
        self.invalidations = self._counter(
            "pool_invalidations", "Connections invalidated, by reason", ["engine", "reason"]
        )
        self.queries = self._histogram(
            "query_duration_seconds", "Statement duration", ["engine", "operation", "outcome"], QUERY_BUCKETS
        )
        self.slow = self._counter(
            "slow_queries", "Statements past the slow threshold", ["engine", "operation"]
        )
        self.errors = self._counter("errors", "Errors by the kit's error class", ["engine", "error"])
        self.routes = self._counter("routing_decisions", "Sessions routed, by target", ["engine", "target"])
        self.lag = self._gauge("replica_lag_seconds", "Replication lag", ["engine"], mode="livemax")
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.ConnectionCreated: self._created,
            ev.ConnectionCheckedOut: self._checked_out,
            ev.ConnectionCheckedIn: self._checked_in,
            ev.ConnectionClosed: self._closed,
            ev.ConnectionInvalidated: self._invalidated,
            ev.PendingRequests: self._pending,
            ev.PoolTimedOut: self._timed_out,
            ev.PoolCapacity: self._capacity_changed,
            ev.QueryExecuted: self._query,
            ev.RouteDecided: lambda e: self.routes.labels(e.engine, e.target).inc(),
            ev.ReplicaLag: lambda e: self.lag.labels(e.engine).set(e.seconds),
        }

    # -- metric construction ------------------------------------------------------------
    def _gauge(
        self, name: str, doc: str, labels: Sequence[str], mode: Literal["livesum", "livemax"] = "livesum"
    ) -> Gauge:
        gauge = Gauge(name, doc, labels, namespace="kit_db", registry=self.registry, multiprocess_mode=mode)
        self._collectors.append(gauge)
        return gauge

    def _counter(self, name: str, doc: str, labels: Sequence[str]) -> Counter:
        counter = Counter(name, doc, labels, namespace="kit_db", registry=self.registry)
        self._collectors.append(counter)
        return counter

    def _histogram(self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> Histogram:
        histogram = Histogram(name, doc, labels, namespace="kit_db", registry=self.registry, buckets=buckets)
        self._collectors.append(histogram)
        return histogram

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- the hook -----------------------------------------------------------------------
    def __call__(self, event: ev.MetricsEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _pool_series(self, engine: str) -> tuple[Any, Any, Any, Any]:
        """idle, used, wait, use children of ``engine``: one lookup on the hot path."""
        series = self._pools.get(engine)
        if series is None:
            series = self._pools[engine] = (
                self._child(self.connections, engine, "idle"),
                self._child(self.connections, engine, "used"),
                self._child(self.wait, engine),
                self._child(self.use, engine),
            )
        return series

    def _created(self, e: ev.ConnectionCreated) -> None:
        if not e.adopted:
            self._child(self.created, e.engine).inc()
        self._child(self.connections, e.engine, "idle").inc()

    def _checked_out(self, e: ev.ConnectionCheckedOut) -> None:
        idle, used, wait, _ = self._pool_series(e.engine)
        idle.dec()
        used.inc()
        wait.observe(e.wait)

    def _checked_in(self, e: ev.ConnectionCheckedIn) -> None:
        idle, used, _, use = self._pool_series(e.engine)
        used.dec()
        idle.inc()
        use.observe(e.use)

    def _closed(self, e: ev.ConnectionClosed) -> None:
        self._child(self.connections, e.engine, "idle").dec()

    def _invalidated(self, e: ev.ConnectionInvalidated) -> None:
        self._child(self.invalidations, e.engine, e.reason).inc()

    def _pending(self, e: ev.PendingRequests) -> None:
        self._child(self.pending, e.engine).inc(e.delta)

    def _timed_out(self, e: ev.PoolTimedOut) -> None:
        self._child(self.timeouts, e.engine).inc()
        self._child(self.errors, e.engine, POOL_TIMEOUT_ERROR).inc()

    def _capacity_changed(self, e: ev.PoolCapacity) -> None:
        self._capacity[e.engine] = self._capacity.get(e.engine, 0) + e.delta
        self._child(self.max, e.engine).inc(e.delta)

    def after_fork_in_child(self) -> None:
        """The child's pools are fresh (no connection, no waiter) but its engines exist.

        Multiprocess mode starts the child's files at zero: the capacity is written again.
        Otherwise the parent's values were inherited: connections and pending go to zero.
        """
        if multiprocess_mode():
            for engine, capacity in self._capacity.items():
                self._child(self.max, engine).set(capacity)
            return
        for (metric_id, *_labels), child in self._children.items():
            if metric_id in (id(self.connections), id(self.pending)):
                child.set(0)

    def _query(self, e: ev.QueryExecuted) -> None:
        self._child(self.queries, e.engine, e.operation, e.outcome).observe(e.duration)
        if e.slow:
            self._child(self.slow, e.engine, e.operation).inc()
        if e.error is not None:
            self._child(self.errors, e.engine, e.error).inc()

    def unregister(self) -> None:
        """Remove this exporter's series from its registry."""
        for metric in self._collectors:
            self.registry.unregister(metric)
        self._collectors.clear()
        self._children.clear()
        self._pools.clear()


def install_prometheus(registry: CollectorRegistry | None = None) -> PrometheusMetrics:
    """Export every kit engine's metrics to ``registry`` (default: the global one); idempotent."""
    target = REGISTRY if registry is None else registry
    with _lock:
        exporter = _installed.get(id(target))
        if exporter is None:
            exporter = _installed[id(target)] = PrometheusMetrics(target)
        if not _fork_hook["installed"]:
            _fork_hook["installed"] = True
            os.register_at_fork(after_in_child=_after_fork_in_child)
    add_metrics_hook(exporter)
    return exporter


def _after_fork_in_child() -> None:
    for exporter in list(_installed.values()):
        exporter.after_fork_in_child()


def reset_prometheus() -> None:
    """Remove every installed exporter's hook and series (for tests)."""
    with _lock:
        exporters = list(_installed.values())
        _installed.clear()
    for exporter in exporters:
        remove_metrics_hook(exporter)
        exporter.unregister()


def render_prometheus(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The text exposition and its content type; in multiprocess mode, summed over every
    process that wrote to ``PROMETHEUS_MULTIPROC_DIR``."""
    if multiprocess_mode():
        merged = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY if registry is None else registry), CONTENT_TYPE_LATEST


def prometheus_process_exited(pid: int | None = None) -> None:
    """Drop the live gauges of an ended process (multiprocess mode; no-op otherwise)."""
    if multiprocess_mode():
        prom_multiprocess.mark_process_dead(os.getpid() if pid is None else pid)  # type: ignore[no-untyped-call]


reset = reset_prometheus  # what pkg.database.metrics.reset_metrics() calls
