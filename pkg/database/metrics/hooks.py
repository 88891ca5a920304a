"""The plain hook API: every engine the kit creates reports pool and statement events to
the hooks added here; the Prometheus and OpenTelemetry exporters are two such hooks.

Nothing is attached while no hook exists: an engine's pool listeners, its queue timing and
the statement monitor's metrics call are switched on by the first :func:`add_metrics_hook`
(for the engines that exist and every later one) and off by the last removal.

Example::

    from pkg.database.metrics import QueryExecuted, add_metrics_hook

    def count_slow(event):
        if isinstance(event, QueryExecuted) and event.slow:
            slow_by_engine[event.engine] += 1

    add_metrics_hook(count_slow)

A hook runs inline, on the thread and loop of the database call: keep it fast and
non-blocking. One that raises is logged (``pkg.database.metrics``) and never breaks the
database call.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from typing import Protocol

from sqlalchemy.engine import Engine

from pkg.database.errors import ConfigurationError
from pkg.database.metrics.events import MetricsEvent, MetricsHook

__all__ = [
    "add_metrics_hook",
    "emit_metrics_event",
    "engine_label",
    "metered_engines",
    "metrics_hooks",
    "remove_metrics_hook",
    "reset_metrics_hooks",
]

logger = logging.getLogger("pkg.database.metrics")


class EngineMetrics(Protocol):
    """What the registry needs of one engine's event source (:mod:`.engines`)."""

    name: str

    def enable(self) -> None: ...

    def disable(self) -> None: ...

    def forget_connections(self) -> None: ...


_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_state: dict[str, tuple[MetricsHook, ...]] = {"hooks": ()}
_engines: weakref.WeakKeyDictionary[Engine, EngineMetrics] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_fork_hook = {"installed": False}


def emit_metrics_event(event: MetricsEvent) -> None:
    """Hand ``event`` to every hook (for the kit's own code, e.g. replica routing and lag)."""
    for hook in _state["hooks"]:
        try:
            hook(event)
        except Exception:
            logger.exception("metrics hook %r failed on %s", hook, type(event).__name__)


def metrics_hooks() -> tuple[MetricsHook, ...]:
    """The hooks currently added, in order."""
    return _state["hooks"]


def add_metrics_hook(hook: MetricsHook) -> None:
    """Send every engine's metrics events to ``hook`` (a callable taking one event); idempotent."""
    if not callable(hook):
        raise ConfigurationError(f"a metrics hook must be callable, not {type(hook).__name__}")
    with _lock:
        if hook in _state["hooks"]:
            return
        _state["hooks"] = (*_state["hooks"], hook)
        first = len(_state["hooks"]) == 1
        engines = list(_engines.values())
    if first:
        _install_fork_hook()
        for metrics in engines:
            metrics.enable()


def remove_metrics_hook(hook: MetricsHook) -> None:
    """Stop sending events to ``hook``; with no hook left every listener is detached."""
    with _lock:
        _state["hooks"] = tuple(h for h in _state["hooks"] if h != hook)
        last = not _state["hooks"]
        engines = list(_engines.values())
    if last:
        for metrics in engines:
            metrics.disable()


def reset_metrics_hooks() -> None:
    """Remove every hook and detach every listener (for tests)."""
    for hook in _state["hooks"]:
        remove_metrics_hook(hook)


def engine_label(name: str | None, *, fallback: str = "default", strict: bool = False) -> str:
    """The ``engine`` label for ``name``: letters, digits, ``_.:-``, at most 64 characters.

    ``strict`` (a name given as ``metrics_name``): anything else is a ConfigurationError.
    Otherwise (an application name) other characters become ``_``; empty gives ``fallback``.
    """
    if not name:
        return fallback
    if _LABEL.fullmatch(name):
        return name
    if strict:
        raise ConfigurationError(
            f"metrics_name {name!r}: use 1-64 letters, digits or _.:- (a bounded label)", key="metrics_name"
        )
    return _UNSAFE.sub("_", name)[:64]


def register_engine_metrics(sync_engine: Engine, metrics: EngineMetrics) -> None:
    """Track an engine for metrics (called once per kit engine); on at once if hooks exist."""
    with _lock:
        _engines[sync_engine] = metrics
        active = bool(_state["hooks"])
    if active:
        metrics.enable()


def metered_engines() -> dict[str, int]:
    """How many live kit engines carry each ``engine`` label."""
    counts: dict[str, int] = {}
    for metrics in list(_engines.values()):
        counts[metrics.name] = counts.get(metrics.name, 0) + 1
    return counts


def _install_fork_hook() -> None:
    with _lock:
        if _fork_hook["installed"]:
            return
        _fork_hook["installed"] = True
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    """A forked child's pools are fresh (lifecycle.autodispose): forget the parent's connections."""
    for metrics in list(_engines.values()):
        metrics.forget_connections()
