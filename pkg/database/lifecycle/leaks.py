"""Checkout owner tracking: who holds each pooled connection, since when, and from where.

Attached to every engine by :func:`pkg.database.lifecycle.register.register_engine`. The bare
bookkeeping (which DBAPI connections are out) is always on: forced shutdown needs it.
With tracking on, each checkout also records the asyncio task name and the first
call site outside the kit, and a connection held longer than ``threshold`` seconds
logs a WARNING naming its owner.

Example::

    configure_leak_tracking(enabled=True, threshold=30.0)
    for held in checked_out_connections(engine):
        print(held.describe())
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import weakref
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "Checkout",
    "LeakTracker",
    "attach_leak_tracker",
    "checked_out_connections",
    "configure_leak_tracking",
    "leak_tracker",
]

logger = logging.getLogger(__name__)

# Frames of these modules are "the kit" (or its plumbing): the owner is the first frame outside.
KIT_MODULES: tuple[str, ...] = (
    "sqlalchemy.",
    "asyncio.",
    "contextlib",
    "greenlet",
    "pkg.database.",
)
_plumbing: dict[str, tuple[str, ...]] = {"extra": ()}
_skip_cache: dict[CodeType, bool] = {}
_trackers: weakref.WeakKeyDictionary[Engine, LeakTracker] = weakref.WeakKeyDictionary()
_defaults: dict[str, Any] = {"enabled": True, "threshold": 30.0}


@dataclass(slots=True, eq=False)
class Checkout:
    """One checked-out connection: its owner, since when, and the driver connection."""

    driver_connection: Any
    since: float
    key: int = 0
    task: str | None = None
    site: str | None = None
    watched: bool = field(default=False, repr=False)  # owner captured: warn once past threshold

    def age(self) -> float:
        return time.monotonic() - self.since

    def describe(self) -> str:
        owner = f"task {self.task!r}" if self.task else "no task"
        return f"{owner} at {self.site or 'unknown site'}, held {self.age():.1f}s"


def _is_kit(code: CodeType, module: str) -> bool:
    skip = _skip_cache.get(code)
    if skip is None:
        skip = module.startswith(KIT_MODULES) or module.startswith(_plumbing["extra"])
        _skip_cache[code] = skip
    return skip


def _next_frame(frame: FrameType, jumped: bool) -> tuple[FrameType | None, bool]:
    """The caller's frame; at a greenlet's root, continue in the parent greenlet."""
    if frame.f_back is not None or jumped:
        return frame.f_back, jumped
    parent = getattr(sys.modules.get("greenlet"), "getcurrent", lambda: None)()
    parent = getattr(parent, "parent", None)
    return getattr(parent, "gr_frame", None), True


def call_site(depth: int = 2, limit: int = 80) -> str | None:
    """``file:line in function`` of the first frame outside the kit and the app's plumbing."""
    frame: FrameType | None = sys._getframe(depth)
    jumped, known = False, _skip_cache
    while frame is not None and limit > 0:  # runs at every checkout: known frames cost one lookup
        code = frame.f_code
        skip = known.get(code)
        if skip is None:
            skip = _is_kit(code, frame.f_globals.get("__name__", ""))
        if not skip:
            return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        back = frame.f_back
        frame, jumped = (back, jumped) if back is not None or jumped else _next_frame(frame, jumped)
        limit -= 1
    return None


class LeakTracker:
    """Pool ``checkout``/``checkin`` listener keeping one :class:`Checkout` per connection out."""

    def __init__(self, name: str, *, enabled: bool, threshold: float | None) -> None:
        self.name = name
        self.enabled = enabled
        self.threshold = threshold
        self.out: dict[int, Checkout] = {}
        self._sweep: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None

    def on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        held = Checkout(record.driver_connection, time.monotonic(), id(record))
        self.out[held.key] = held
        if not self.enabled:
            return
        held.site = call_site(depth=2)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = asyncio.current_task(loop)
        held.task = task.get_name() if task is not None else None
        if self.threshold:
            held.watched = True
            sweep = self._sweep
            if sweep is None or sweep[0] is not loop or sweep[1].when() > loop.time() + self.threshold:
                if sweep is not None and sweep[0] is loop:  # due later than this holder (threshold lowered)
                    sweep[1].cancel()
                self._sweep = (loop, loop.call_later(self.threshold, self._overdue))

    def on_checkin(self, dbapi_connection: Any, record: Any) -> None:
        self.out.pop(id(record), None)

    def _overdue(self) -> None:
        """One timer per tracker, not one per checkout: warn (once each) about connections
        held past the threshold, then sleep until the next one would be."""
        self._sweep = None
        if not self.threshold:
            return
        now, due = time.monotonic(), None
        for held in list(self.out.values()):
            if not held.watched:
                continue
            if now - held.since >= self.threshold:
                held.watched = False
                logger.warning(
                    "connection of %s held longer than %.1fs: %s", self.name, self.threshold, held.describe()
                )
            elif due is None or held.since < due:
                due = held.since
        if due is not None:
            loop = asyncio.get_running_loop()
            self._sweep = (loop, loop.call_later(due + self.threshold - now, self._overdue))

    def snapshot(self) -> list[Checkout]:
        return sorted(self.out.values(), key=lambda held: held.since)

    def forget(self) -> None:
        """Drop the bookkeeping without touching connections (forked child)."""
        if self._sweep is not None:
            self._sweep[1].cancel()
            self._sweep = None
        self.out.clear()


def attach_leak_tracker(engine: AsyncEngine, name: str) -> LeakTracker:
    """Attach (once) a tracker with the current defaults to ``engine``'s pool."""
    sync_engine = engine.sync_engine
    tracker = _trackers.get(sync_engine)
    if tracker is None:
        tracker = LeakTracker(name, enabled=_defaults["enabled"], threshold=_defaults["threshold"])
        event.listen(sync_engine, "checkout", tracker.on_checkout)
        event.listen(sync_engine, "checkin", tracker.on_checkin)
        _trackers[sync_engine] = tracker
    return tracker


def leak_tracker(engine: AsyncEngine) -> LeakTracker | None:
    return _trackers.get(engine.sync_engine)


def checked_out_connections(engine: AsyncEngine) -> list[Checkout]:
    """Every connection of ``engine`` still checked out, oldest first."""
    tracker = leak_tracker(engine)
    return tracker.snapshot() if tracker is not None else []


def configure_leak_tracking(
    enabled: bool | None = None,
    threshold: float | None = None,
    engine: AsyncEngine | None = None,
    *,
    plumbing: tuple[str, ...] | None = None,
) -> None:
    """Switch owner capture on/off and set the warning threshold (seconds; 0: never).

    Applies to ``engine`` only when given, else to every tracked and future engine.
    ``plumbing`` names the application's own session-helper modules (prefixes), skipped
    like the kit's when finding who holds a connection, e.g. ``("app.db",)``.
    """
    if plumbing is not None:
        _plumbing["extra"] = tuple(plumbing)
        _skip_cache.clear()
    targets = [leak_tracker(engine)] if engine is not None else list(_trackers.values())
    if engine is None:
        if enabled is not None:
            _defaults["enabled"] = enabled
        if threshold is not None:
            _defaults["threshold"] = threshold
    for tracker in targets:
        if tracker is None:
            continue
        if enabled is not None:
            tracker.enabled = enabled
        if threshold is not None:
            tracker.threshold = threshold


def reset_leak_tracking() -> None:
    """Restore the defaults (owner capture on, 30 s threshold, no plumbing); for tests."""
    configure_leak_tracking(enabled=True, threshold=30.0, plumbing=())
