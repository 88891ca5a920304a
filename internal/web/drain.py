"""Graceful drain: know when shutdown began, refuse new requests, report what was in flight.

uvicorn closes its listening socket on SIGTERM and waits (up to
``timeout_graceful_shutdown``) for in-flight requests. This module adds the
application's side: a chained SIGTERM/SIGINT handler that flips the app into
draining mode, an ASGI middleware that answers requests arriving during the drain
(and those the deadline cancels) with ``503`` + ``Retry-After``, and counters the lifespan logs at shutdown::

    drain = DrainState()
    app.add_middleware(DrainMiddleware, state=drain)
    uninstall = install_drain_signals(drain)   # in the lifespan startup
    ...
    uninstall(); await drain.settle(); drain.log_summary()   # in the lifespan shutdown
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["DrainMiddleware", "DrainState", "install_drain_signals"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]
_RETRY_AFTER = "5"


@dataclass
class DrainState:
    """In-flight requests and what happened to them once draining began."""

    draining: bool = False
    drain_started: float | None = None
    in_flight: dict[int, tuple[str, float]] = field(default_factory=dict)
    in_flight_at_drain: int = 0
    finished_during_drain: int = 0
    cancelled: int = 0
    rejected: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def is_draining(self) -> bool:
        """Whether draining has begun (a call, so checks after an await are not narrowed away)."""
        return self.draining

    def start_drain(self, reason: str) -> None:
        """Enter draining mode (idempotent) and log what is still running."""
        if self.draining:
            return
        self.draining = True
        self.drain_started = time.monotonic()
        self.in_flight_at_drain = len(self.in_flight)
        logger.info("draining (%s): %d request(s) in flight", reason, self.in_flight_at_drain)

    def enter(self, label: str) -> int:
        ident = next(self._ids)
        self.in_flight[ident] = (label, time.monotonic())
        self._idle.clear()
        return ident

    def leave(self, ident: int, *, cancelled: bool = False) -> None:
        self.in_flight.pop(ident, None)
        if not self.in_flight:
            self._idle.set()
        if cancelled:
            self.cancelled += 1
        elif self.draining:
            self.finished_during_drain += 1

    async def settle(self, timeout: float = 1.0) -> None:
        """Give requests just cancelled by the server's deadline a moment to unwind."""
        if self.in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)

    def summary(self) -> dict[str, Any]:
        waited = time.monotonic() - self.drain_started if self.drain_started is not None else 0.0
        return {
            "draining": self.draining,
            "in_flight_at_drain": self.in_flight_at_drain,
            "finished_during_drain": self.finished_during_drain,
            "cancelled": self.cancelled,
            "rejected": self.rejected,
            "still_running": sorted(label for label, _ in self.in_flight.values()),
            "waited": round(waited, 3),
        }

    def log_summary(self) -> dict[str, Any]:
        """Log (and return) what the drain waited for and what it had to force."""
        info = self.summary()
        logger.info(
            "drain finished after %.3fs: %d in flight at drain start, %d finished, "
            "%d cancelled by the deadline, %d rejected with 503",
            info["waited"],
            info["in_flight_at_drain"],
            info["finished_during_drain"],
            info["cancelled"],
            info["rejected"],
        )
        if info["cancelled"] or info["still_running"]:
            logger.warning(
                "drain forced: %d request(s) cancelled at the deadline (answered 503); still running: %s",
                info["cancelled"],
                info["still_running"],
            )
        return info


class DrainMiddleware:
    """ASGI middleware: tracks in-flight HTTP requests; 503 + Retry-After while draining."""

    def __init__(self, app: ASGIApp, state: DrainState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.state.draining:
            self.state.rejected += 1
            await _refuse(send)
            return
        ident = self.state.enter(f"{scope['method']} {scope['path']}")
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        cancelled = False
        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            cancelled = True
            if started or not self.state.is_draining():  # a call: draining may have changed
                raise
            # cancelled by the server's drain deadline: answer 503 instead of a 500 traceback
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await _refuse(send, "request cancelled: shutdown deadline exceeded")
        finally:
            self.state.leave(ident, cancelled=cancelled)


async def _refuse(send: Callable[..., Any], detail: str = "server is shutting down") -> None:
    body = json.dumps({"detail": detail, "code": "draining"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", _RETRY_AFTER.encode()),
        (b"connection", b"close"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_drain_signals(
    state: DrainState, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
) -> Callable[[], None]:
    """Chain a handler in front of the current SIGTERM/SIGINT handlers (e.g. uvicorn's).

    Returns a function restoring the previous handlers. Outside the main thread
    (where signals cannot be handled) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        logger.debug("not in the main thread: drain signals not installed")
        return lambda: None
    installed: dict[signal.Signals, tuple[Any, Callable[..., None]]] = {}
    for sig in signals:
        previous = signal.getsignal(sig)
        handler = _chained(state, sig, previous)
        signal.signal(sig, handler)
        installed[sig] = (previous, handler)

    def uninstall() -> None:
        for sig, (previous, handler) in installed.items():
            if signal.getsignal(sig) is handler:  # someone chained after us: leave theirs
                signal.signal(sig, previous)

    return uninstall


def _chained(
    state: DrainState, sig: signal.Signals, previous: Any
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        state.start_drain(signal.Signals(signum).name)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # nobody else handles it: behave as if we were not here
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    return handler
