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
from collections import defaultdict
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


class OTelMetrics:
    """The hook: each event records on its instrument; attribute dicts are cached."""

    def __init__(self, meter_provider: Any = None) -> None:
        meter = otel_metrics.get_meter(METER_NAME, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "db.client.operation.duration",
            description="Duration of database client operations",
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        # Pool states are plain ints here, read by the SDK at collection (observable up-down
        # counters): a checkout costs two int updates, not two SDK measurements.
        self._levels: dict[tuple[str, ...], int] = defaultdict(int)  # (name, engine[, state])
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
        self._handlers: dict[type, Any] = {
            ev.ConnectionCreated: self._created,
            ev.ConnectionCheckedOut: self._checked_out,
            ev.ConnectionCheckedIn: self._checked_in,
            ev.ConnectionClosed: lambda e: self._add(-1, COUNT, e.engine, "idle"),
            ev.ConnectionInvalidated: lambda e: self.invalidations.add(
                1, self._a(POOL, e.engine, "kit.db.invalidation.reason", e.reason)
            ),
            ev.PendingRequests: lambda e: self._add(e.delta, PENDING, e.engine),
            ev.PoolTimedOut: self._timed_out,
            ev.PoolCapacity: lambda e: self._add(e.delta, MAX, e.engine),
            ev.QueryExecuted: self._query,
            ev.RouteDecided: lambda e: self.routes.add(
                1, self._a(POOL, e.engine, "kit.db.route.target", e.target)
            ),
            ev.ReplicaLag: lambda e: self.lag.record(e.seconds, self._a(POOL, e.engine)),
        }

    def _add(self, delta: int, *key: str) -> None:
        self._levels[key] += delta

    def _observer(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for key, value in list(self._levels.items()):
                if key[0] == name:
                    attrs = self._a(POOL, key[1], STATE, key[2]) if len(key) == 3 else self._a(POOL, key[1])
                    yield Observation(value, attrs)

        return observe

    def _a(self, *pairs: str) -> dict[str, str]:
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
            self.created.add(1, self._a(POOL, e.engine))
        self._add(1, COUNT, e.engine, "idle")

    def _checked_out(self, e: ev.ConnectionCheckedOut) -> None:
        levels = self._levels
        levels[COUNT, e.engine, "idle"] -= 1
        levels[COUNT, e.engine, "used"] += 1
        self.wait.record(e.wait, self._a(POOL, e.engine))

    def _checked_in(self, e: ev.ConnectionCheckedIn) -> None:
        levels = self._levels
        levels[COUNT, e.engine, "used"] -= 1
        levels[COUNT, e.engine, "idle"] += 1
        self.use.record(e.use, self._a(POOL, e.engine))

    def _timed_out(self, e: ev.PoolTimedOut) -> None:
        self.timeouts.add(1, self._a(POOL, e.engine))
        self.errors.add(1, self._a(POOL, e.engine, "error.type", POOL_TIMEOUT_ERROR))

    def _query(self, e: ev.QueryExecuted) -> None:
        base = (POOL, e.engine, "db.system.name", e.system, "db.operation.name", e.operation)
        attrs = self._a(*base, "error.type", e.error) if e.error is not None else self._a(*base)
        self.duration.record(e.duration, attrs)
        if e.slow:
            self.slow.add(1, self._a(POOL, e.engine, "db.operation.name", e.operation))
        if e.error is not None:
            self.errors.add(1, self._a(POOL, e.engine, "error.type", e.error))


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
