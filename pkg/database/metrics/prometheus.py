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
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client import multiprocess as prom_multiprocess

from pkg.database.metrics import events as ev
from pkg.database.metrics.hooks import add_metrics_hook, remove_metrics_hook
from pkg.database.metrics.prom_series import (
    QUERY_BUCKETS,
    USE_BUCKETS,
    WAIT_BUCKETS,
    ClientSeries,
    LocalCollector,
    LocalSeries,
    client_metrics,
)

__all__ = [
    "MULTIPROC_ENV",
    "QUERY_BUCKETS",
    "USE_BUCKETS",
    "WAIT_BUCKETS",
    "PrometheusMetrics",
    "install_prometheus",
    "multiprocess_mode",
    "prometheus_process_exited",
    "render_prometheus",
    "reset_prometheus",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_installed: dict[int, PrometheusMetrics] = {}
_lock = threading.Lock()
_fork_hook = {"installed": False}


def multiprocess_mode() -> bool:
    """Whether ``PROMETHEUS_MULTIPROC_DIR`` is set (values live in per-process files)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class PrometheusMetrics:
    """The hook: one series store per ``engine`` label (:mod:`.prom_series`), plain numbers
    read by a collector at scrape time, or ``prometheus_client`` objects in multiprocess mode.

    Its ``bind_engine`` gives the hot path (checkout, checkin, statement) that engine's store
    directly; every other event reaches it through ``__call__``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.multiprocess = multiprocess_mode()
        self._series: dict[str, Any] = {}  # engine label -> LocalSeries | ClientSeries
        self._series_lock = threading.Lock()
        self._collectors: list[Any] = []
        self._metrics: dict[str, Any] = {}
        if self.multiprocess:
            self._metrics = client_metrics(self.registry)
            self._collectors = list(self._metrics.values())
        else:
            collector = LocalCollector(lambda: dict(self._series))
            self.registry.register(collector)
            self._collectors = [collector]
        self._handlers: dict[type, Callable[[Any, Any], None]] = {
            ev.ConnectionCreated: lambda s, e: s.created(e.adopted),
            ev.ConnectionCheckedOut: lambda s, e: s.checked_out(e.wait),
            ev.ConnectionCheckedIn: lambda s, e: s.checked_in(e.use),
            ev.ConnectionClosed: lambda s, e: s.closed(),
            ev.ConnectionInvalidated: lambda s, e: s.invalidated(e.reason),
            ev.PendingRequests: lambda s, e: s.waiting(e.delta),
            ev.PoolTimedOut: lambda s, e: s.timed_out(),
            ev.PoolCapacity: lambda s, e: s.capacity(e.delta),
            ev.QueryExecuted: lambda s, e: s.query(e.operation, e.outcome, e.duration, e.slow, e.error),
            ev.RouteDecided: lambda s, e: s.routed(e.target),
            ev.ReplicaLag: lambda s, e: s.replica_lag(e.seconds),
        }

    def bind_engine(self, engine: str, system: str = "") -> Any:
        """The series store of ``engine`` (created on first use; shared by engines with one label)."""
        series = self._series.get(engine)
        if series is None:
            with self._series_lock:
                series = self._series.get(engine)
                if series is None:
                    made = ClientSeries(engine, self._metrics) if self.multiprocess else LocalSeries(engine)
                    series = self._series[engine] = made
        return series

    def __call__(self, event: ev.MetricsEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self.bind_engine(event.engine), event)

    def after_fork_in_child(self) -> None:
        """The child's pools are fresh (no connection, no waiter) but its engines exist.

        Multiprocess mode starts the child's files at zero: the capacity is written again.
        Otherwise the parent's values were inherited: connections and pending go to zero.
        """
        self._series_lock = threading.Lock()
        for series in list(self._series.values()):
            series.after_fork()

    def unregister(self) -> None:
        """Remove this exporter's series from its registry."""
        for collector in self._collectors:
            self.registry.unregister(collector)
        self._collectors.clear()
        self._series.clear()


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
