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

The hot path (each checkout, checkin and statement) may skip the event objects: a hook that
also has ``bind_engine(engine, system)`` returning an :class:`EngineSink` is called through
that sink's methods, bound once per engine, instead of with ``ConnectionCheckedOut``,
``ConnectionCheckedIn`` and ``QueryExecuted`` events (the Prometheus and OpenTelemetry
exporters do). Every other event still reaches ``hook(event)``. A plain callable gets the
events as before.
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
from pkg.database.metrics.events import (
    ConnectionCheckedIn,
    ConnectionCheckedOut,
    MetricsEvent,
    MetricsHook,
    Operation,
    Outcome,
    QueryExecuted,
)

__all__ = [
    "EngineSink",
    "add_metrics_hook",
    "bind_hook",
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

    def rebind(self, hooks: tuple[MetricsHook, ...]) -> None: ...


class EngineSink(Protocol):
    """One hook's hot path for one engine: what ``bind_engine(engine, system)`` returns."""

    def checked_out(self, wait: float) -> None: ...

    def checked_in(self, use: float) -> None: ...

    def query(
        self, operation: Operation, outcome: Outcome, duration: float, slow: bool, error: str | None
    ) -> None: ...


class _EventSink:
    """A plain hook's sink: builds the typed event and calls the hook with it."""

    __slots__ = ("engine", "hook", "system")

    def __init__(self, hook: MetricsHook, engine: str, system: str) -> None:
        self.hook, self.engine, self.system = hook, engine, system

    def __repr__(self) -> str:
        return repr(self.hook)

    def checked_out(self, wait: float) -> None:
        self.hook(ConnectionCheckedOut(self.engine, wait))

    def checked_in(self, use: float) -> None:
        self.hook(ConnectionCheckedIn(self.engine, use))

    def query(
        self, operation: Operation, outcome: Outcome, duration: float, slow: bool, error: str | None
    ) -> None:
        self.hook(QueryExecuted(self.engine, self.system, operation, outcome, duration, slow, error))


def bind_hook(hook: MetricsHook, engine: str, system: str) -> EngineSink:
    """``hook``'s sink for one engine: its own ``bind_engine`` if it has one, else events."""
    bind = getattr(hook, "bind_engine", None)
    if callable(bind):
        sink: EngineSink = bind(engine, system)
        return sink
    return _EventSink(hook, engine, system)


_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_state: dict[str, tuple[MetricsHook, ...]] = {"hooks": ()}
_engines: weakref.WeakKeyDictionary[Engine, EngineMetrics] = weakref.WeakKeyDictionary()
_lock = threading.RLock()  # a hook's bind_engine runs under it
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
        _state["hooks"] = hooks = (*_state["hooks"], hook)
        first = len(hooks) == 1
        engines = list(_engines.values())
        for metrics in engines:
            metrics.rebind(hooks)
    if first:
        _install_fork_hook()
        for metrics in engines:
            metrics.enable()


def remove_metrics_hook(hook: MetricsHook) -> None:
    """Stop sending events to ``hook``; with no hook left every listener is detached."""
    with _lock:
        _state["hooks"] = hooks = tuple(h for h in _state["hooks"] if h != hook)
        last = not hooks
        engines = list(_engines.values())
        for metrics in engines:
            metrics.rebind(hooks)
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
        hooks = _state["hooks"]
        metrics.rebind(hooks)
    if hooks:
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
