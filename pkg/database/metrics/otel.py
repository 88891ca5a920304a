"""OpenTelemetry exporter (the ``otel`` extra): a metrics hook recording the database client
semantic conventions under the meter ``pkg.database``.

Example::

    from opentelemetry.sdk.metrics import MeterProvider
    from pkg.database.metrics import install_otel

    install_otel(MeterProvider(metric_readers=[reader]))   # or the global provider

Instruments (attribute ``db.client.connection.pool.name`` = the ``engine`` label):

=============================================  ==============================================
``db.client.operation.duration`` (s)           histogram; ``db.system.name``,
                                               ``db.operation.name``, ``error.type`` on failure
``db.client.connection.count``                 observable up-down counter;
                                               ``db.client.connection.state`` ``idle`` / ``used``
``db.client.connection.max``                   observable up-down counter
``db.client.connection.pending_requests``      observable up-down counter
``db.client.connection.timeouts``              counter
``db.client.connection.wait_time`` (s)         histogram
``db.client.connection.use_time`` (s)          histogram
``kit.db.connection.created``                  counter
``kit.db.connection.invalidations``            counter; ``kit.db.invalidation.reason``
``kit.db.slow_queries``                        counter; ``db.operation.name``
``kit.db.errors``                              counter; ``error.type`` (the kit's error class)
``kit.db.routing.decisions``                   counter; ``kit.db.route.target``
``kit.db.replica.lag`` (s)                     histogram of lag samples
=============================================  ==============================================

**Next to SQLAlchemy's own instrumentor** (``opentelemetry-instrumentation-sqlalchemy``):
both may be on at once without counting anything twice. Its metric is
``db.client.connections.usage`` under the meter
``opentelemetry.instrumentation.sqlalchemy`` (plus spans); ours are the names above under
``pkg.database``, fed only by the kit's own hook: no name is shared, and enabling it adds
no second statement timing to ours (``tests/pkg/database/metrics/test_otel.py``). Use ours
for dashboards (every engine, exact pool states), its spans for traces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Observation

from pkg.database.metrics import events as ev
from pkg.database.metrics.classify import POOL_TIMEOUT_ERROR
from pkg.database.metrics.hooks import add_metrics_hook, remove_metrics_hook

__all__ = ["METER_NAME", "OTelMetrics", "install_otel", "reset", "reset_otel"]

METER_NAME = "pkg.database"
POOL = "db.client.connection.pool.name"
STATE = "db.client.connection.state"
COUNT, MAX = "db.client.connection.count", "db.client.connection.max"
PENDING = "db.client.connection.pending_requests"
DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]  # semantic conventions

_SECONDS: dict[str, Any] = {"unit": "s", "explicit_bucket_boundaries_advisory": DURATION_BUCKETS}

_installed: dict[int, OTelMetrics] = {}
_lock = threading.Lock()


class _EngineOTel:
    """One engine label's hot path: pool states as plain ints (read by the observable
    instruments at collection) and attribute dicts built once, so a checkout is two integer
    updates and one SDK ``record``."""

    def __init__(self, owner: OTelMetrics, engine: str, system: str) -> None:
        self.owner, self.engine = owner, engine
        self.lock = threading.Lock()
        self.idle = self.used = self.pending = self.max = 0
        self.pool = {POOL: engine}
        self.idle_attrs, self.used_attrs = {POOL: engine, STATE: "idle"}, {POOL: engine, STATE: "used"}
        self._system = system
        self._ops: dict[tuple[str, str | None], dict[str, str]] = {}
        self._wait, self._use, self._duration = owner.wait.record, owner.use.record, owner.duration.record

    def checked_out(self, wait: float) -> None:
        with self.lock:
            self.idle -= 1
            self.used += 1
        self._wait(wait, self.pool)

    def checked_in(self, use: float) -> None:
        with self.lock:
            self.used -= 1
            self.idle += 1
        self._use(use, self.pool)

    def query(self, operation: str, outcome: str, duration: float, slow: bool, error: str | None) -> None:
        attrs = self._ops.get((operation, error))
        if attrs is None:
            attrs = self._query_attrs(operation, error)
        self._duration(duration, attrs)
        if slow:
            self.owner.slow.add(1, self.owner.attrs(POOL, self.engine, "db.operation.name", operation))
        if error is not None:
            self.owner.errors.add(1, self.owner.attrs(POOL, self.engine, "error.type", error))

    def _query_attrs(self, operation: str, error: str | None) -> dict[str, str]:
        attrs = {POOL: self.engine, "db.system.name": self._system, "db.operation.name": operation}
        if error is not None:
            attrs["error.type"] = error
        self._ops[operation, error] = attrs
        return attrs

    def add(self, name: str, delta: int) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + delta)

    def levels(self, name: str) -> list[tuple[int, dict[str, str]]]:
        with self.lock:
            if name == COUNT:
                return [(self.idle, self.idle_attrs), (self.used, self.used_attrs)]
            return [(self.max if name == MAX else self.pending, self.pool)]


class OTelMetrics:
    """The hook: a per-engine sink (``bind_engine``) for the hot path; the rarer events
    through ``__call__``. Attribute dicts are built once and reused."""

    def __init__(self, meter_provider: Any = None) -> None:
        meter = otel_metrics.get_meter(METER_NAME, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "db.client.operation.duration",
            description="Duration of database client operations",
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        # Pool states are plain ints in each engine's sink, read by the SDK at collection
        # (observable up-down counters): a checkout costs two int updates, not two measurements.
        self._engines: dict[str, _EngineOTel] = {}
        self._engines_lock = threading.Lock()
        for name, unit in ((COUNT, "{connection}"), (MAX, "{connection}"), (PENDING, "{request}")):
            meter.create_observable_up_down_counter(name, callbacks=[self._observer(name)], unit=unit)
        self.timeouts = meter.create_counter("db.client.connection.timeouts", unit="{timeout}")
        self.wait = meter.create_histogram("db.client.connection.wait_time", **_SECONDS)
        self.use = meter.create_histogram("db.client.connection.use_time", **_SECONDS)
        self.created = meter.create_counter("kit.db.connection.created", unit="{connection}")
        self.invalidations = meter.create_counter("kit.db.connection.invalidations", unit="{connection}")
        self.slow = meter.create_counter("kit.db.slow_queries", unit="{operation}")
        self.errors = meter.create_counter("kit.db.errors", unit="{error}")
        self.routes = meter.create_counter("kit.db.routing.decisions", unit="{decision}")
        self.lag = meter.create_histogram("kit.db.replica.lag", unit="s")
        self._attrs: dict[tuple[str, ...], dict[str, str]] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.ConnectionCreated: self._created,
            ev.ConnectionCheckedOut: lambda e: self.bind_engine(e.engine).checked_out(e.wait),
            ev.ConnectionCheckedIn: lambda e: self.bind_engine(e.engine).checked_in(e.use),
            ev.ConnectionClosed: lambda e: self.bind_engine(e.engine).add("idle", -1),
            ev.ConnectionInvalidated: lambda e: self.invalidations.add(
                1, self.attrs(POOL, e.engine, "kit.db.invalidation.reason", e.reason)
            ),
            ev.PendingRequests: lambda e: self.bind_engine(e.engine).add("pending", e.delta),
            ev.PoolTimedOut: self._timed_out,
            ev.PoolCapacity: lambda e: self.bind_engine(e.engine).add("max", e.delta),
            ev.QueryExecuted: lambda e: self.bind_engine(e.engine, e.system).query(
                e.operation, e.outcome, e.duration, e.slow, e.error
            ),
            ev.RouteDecided: lambda e: self.routes.add(
                1, self.attrs(POOL, e.engine, "kit.db.route.target", e.target)
            ),
            ev.ReplicaLag: lambda e: self.lag.record(e.seconds, self.attrs(POOL, e.engine)),
        }

    def bind_engine(self, engine: str, system: str = "") -> _EngineOTel:
        """The sink of ``engine`` (created on first use; shared by engines with one label)."""
        sink = self._engines.get(engine)
        if sink is None:
            with self._engines_lock:
                sink = self._engines.get(engine)
                if sink is None:
                    sink = self._engines[engine] = _EngineOTel(self, engine, system)
        if system and not sink._system:
            sink._system = system
        return sink

    def _observer(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for sink in list(self._engines.values()):
                for value, attrs in sink.levels(name):
                    yield Observation(value, attrs)

        return observe

    def attrs(self, *pairs: str) -> dict[str, str]:
        """The attribute dict of ``key, value, key, value ...`` (built once, then reused)."""
        attrs = self._attrs.get(pairs)
        if attrs is None:
            attrs = self._attrs[pairs] = dict(zip(pairs[::2], pairs[1::2], strict=True))
        return attrs

    def __call__(self, event: ev.MetricsEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _created(self, e: ev.ConnectionCreated) -> None:
        if not e.adopted:
            self.created.add(1, self.attrs(POOL, e.engine))
        self.bind_engine(e.engine).add("idle", 1)

    def _timed_out(self, e: ev.PoolTimedOut) -> None:
        self.timeouts.add(1, self.attrs(POOL, e.engine))
        self.errors.add(1, self.attrs(POOL, e.engine, "error.type", POOL_TIMEOUT_ERROR))


def install_otel(meter_provider: Any = None) -> OTelMetrics:
    """Record every kit engine's metrics on ``meter_provider`` (default: the global one); idempotent."""
    with _lock:
        exporter = _installed.get(id(meter_provider))
        if exporter is None:
            exporter = _installed[id(meter_provider)] = OTelMetrics(meter_provider)
    add_metrics_hook(exporter)
    return exporter


def reset_otel() -> None:
    """Remove every installed exporter's hook (for tests; instruments stay with their provider)."""
    with _lock:
        exporters = list(_installed.values())
        _installed.clear()
    for exporter in exporters:
        remove_metrics_hook(exporter)


reset = reset_otel  # what pkg.database.metrics.reset_metrics() calls
