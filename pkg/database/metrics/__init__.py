"""Pool and query metrics for every engine the kit creates: a plain hook API, and optional
Prometheus (``pip install 'async-data-kit[prometheus]'``) and OpenTelemetry
(``[otel]``) exporters. The kit itself depends on neither.

Example::

    from pkg.database.metrics import add_metrics_hook, install_prometheus, render_prometheus

    install_prometheus()                       # kit_db_* series for every engine
    add_metrics_hook(my_statsd_hook)           # or anything else: a callable taking one event
    body, content_type = render_prometheus()   # GET /metrics

A hook may also have ``bind_engine(engine, system)`` returning an :class:`EngineSink`: the
hot path (checkout, statement, checkin) then calls that sink's methods instead of building
events (see :mod:`pkg.database.metrics.hooks`); both exporters do.

Every engine carries an ``engine`` label: ``new_async_engine(metrics_name=...)``, else its
``application_name``, else ``default``; a :class:`~pkg.database.Database` names its engines
``primary`` and ``replica-0``. Labels are bounded: no SQL text, table names or URLs.

Nothing is attached until the first hook is added; then every existing and future kit
engine reports (see :mod:`pkg.database.metrics.hooks`). Events are listed in
:mod:`pkg.database.metrics.events`. ``reset_metrics()`` removes every hook and exporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pkg.database.errors import ConfigurationError
from pkg.database.metrics.classify import classify_operation
from pkg.database.metrics.events import (
    ConnectionCheckedIn,
    ConnectionCheckedOut,
    ConnectionClosed,
    ConnectionCreated,
    ConnectionInvalidated,
    MetricsEvent,
    MetricsHook,
    PendingRequests,
    PoolCapacity,
    PoolTimedOut,
    QueryExecuted,
    ReplicaLag,
    RouteDecided,
)
from pkg.database.metrics.hooks import (
    EngineSink,
    add_metrics_hook,
    emit_metrics_event,
    metered_engines,
    metrics_hooks,
    remove_metrics_hook,
    reset_metrics_hooks,
)

if TYPE_CHECKING:
    from pkg.database.metrics.otel import OTelMetrics
    from pkg.database.metrics.prometheus import PrometheusMetrics

__all__ = [
    "ConnectionCheckedIn",
    "ConnectionCheckedOut",
    "ConnectionClosed",
    "ConnectionCreated",
    "ConnectionInvalidated",
    "EngineSink",
    "MetricsEvent",
    "MetricsHook",
    "PendingRequests",
    "PoolCapacity",
    "PoolTimedOut",
    "QueryExecuted",
    "ReplicaLag",
    "RouteDecided",
    "add_metrics_hook",
    "classify_operation",
    "emit_metrics_event",
    "install_otel",
    "install_prometheus",
    "metered_engines",
    "metrics_hooks",
    "prometheus_process_exited",
    "remove_metrics_hook",
    "render_prometheus",
    "reset_metrics",
    "reset_metrics_hooks",
]


def _missing(extra: str, exc: ImportError) -> ConfigurationError:
    return ConfigurationError(
        f"metrics export needs the {extra!r} extra: "
        f"pip install 'async-data-kit[{extra}]' ({exc.name} missing)",
        key="APP_METRICS",
    )


def install_prometheus(registry: Any = None) -> PrometheusMetrics:
    """Export every engine's metrics to Prometheus (``registry``: default the global one).

    ConfigurationError when ``prometheus_client`` is not installed.
    """
    try:
        from pkg.database.metrics import prometheus
    except ImportError as exc:
        raise _missing("prometheus", exc) from exc
    return prometheus.install_prometheus(registry)


def render_prometheus(registry: Any = None) -> tuple[bytes, str]:
    """``(body, content_type)`` of a scrape; summed over processes in multiprocess mode."""
    try:
        from pkg.database.metrics import prometheus
    except ImportError as exc:
        raise _missing("prometheus", exc) from exc
    return prometheus.render_prometheus(registry)


def prometheus_process_exited(pid: int | None = None) -> None:
    """Drop an ended process's live gauges in multiprocess mode (no-op otherwise or if absent)."""
    try:
        from pkg.database.metrics import prometheus
    except ImportError:
        return  # no exporter could have written anything
    prometheus.prometheus_process_exited(pid)


def install_otel(meter_provider: Any = None) -> OTelMetrics:
    """Export every engine's metrics through OpenTelemetry (``meter_provider``: default global).

    ConfigurationError when ``opentelemetry-api`` is not installed.
    """
    try:
        from pkg.database.metrics import otel
    except ImportError as exc:
        raise _missing("otel", exc) from exc
    return otel.install_otel(meter_provider)


def reset_metrics() -> None:
    """Remove every hook and installed exporter (for tests)."""
    import sys

    for name in ("pkg.database.metrics.prometheus", "pkg.database.metrics.otel"):
        module = sys.modules.get(name)
        if module is not None:
            module.reset()
    reset_metrics_hooks()
