"""SIGTERM/SIGINT handling for plain scripts, installed only when the application asks.

The rule: building an engine never touches signals. The application's entry point
installs the kit's handlers explicitly (``install_signal_handlers()``, or
``init_async_db()`` with ``DB_HANDLE_SIGNALS=true``), and only where the current handler
is Python's default; automatic disposal at loop end, exit and fork needs no handler.

* A handler is already installed (uvicorn, Celery, the user's own): the kit adds none,
  so the application drains and closes the database itself.
* A signal inherited as ignored (SIG_IGN, e.g. a ``nohup`` job) stays ignored.
* No handler (a plain script): the kit waits (up to ``shutdown_timeout``) until no task
  of the loop is inside a database call, so no statement, commit or connection return
  is cut in half, then raises ``SystemExit(128 + signum)`` for SIGTERM (status 143) or
  ``KeyboardInterrupt`` for SIGINT (Python's convention: status 130, killed by SIGINT)
  from the loop. ``asyncio.run()`` then cancels the tasks (an open transaction rolls
  back at its next await), and the loop's engines are disposed on it. Outside a
  running loop the exception is raised at once.

A repeated signal during that shutdown is ignored for ``shutdown_timeout`` seconds,
then kills the process the default way.

Example::

    install_signal_handlers()    # in main(), before asyncio.run(...)
    set_signal_handling(False)   # e.g. in a Celery worker that manages signals itself
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from functools import partial
from types import FrameType
from typing import Any

from sqlalchemy.util.concurrency import greenlet_spawn

from pkg.database.lifecycle.registry import (
    checked_out_on,
    force_busy_connections,
    running_loops,
    shutdown_timeout,
)

__all__ = [
    "install_signal_handlers",
    "reset_signal_handling",
    "set_signal_handling",
    "signal_handling_enabled",
    "uninstall_signal_handlers",
]

logger = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGINT)
_SPAWN_CODE = greenlet_spawn.__code__
_OPAQUE = ("async_generator_asend", "async_generator_athrow")
_previous: dict[int, Any] = {}
_state: dict[str, Any] = {"enabled": True, "stopping_since": None}


def _is_asyncio_runner(handler: Any) -> bool:
    """asyncio.Runner's own SIGINT handler: asyncio's default, not the application's."""
    owner = getattr(handler.func, "__self__", None) if isinstance(handler, partial) else None
    return isinstance(owner, asyncio.Runner)


def _is_application_handler(handler: Any) -> bool:
    return callable(handler) and handler is not signal.default_int_handler and not _is_asyncio_runner(handler)


def _is_default(handler: Any) -> bool:
    """Python's own behaviour: SIG_DFL, ``default_int_handler``, or asyncio.Runner's."""
    return handler == signal.SIG_DFL or (callable(handler) and not _is_application_handler(handler))


def signal_handling_enabled() -> bool:
    return bool(_state["enabled"])


def set_signal_handling(enabled: bool) -> None:
    """Switch the kit's signal handling on (installs now) or off (restores what it replaced)."""
    _state["enabled"] = enabled
    if enabled:
        install_signal_handlers()
    else:
        uninstall_signal_handlers()


def install_signal_handlers() -> None:
    """Handle SIGTERM/SIGINT where Python's default is in place; call it from your entry point.

    A no-op off the main thread, when disabled, and for a signal that already has an
    application handler or is ignored.
    """
    if not _state["enabled"] or threading.current_thread() is not threading.main_thread():
        return
    for signum in HANDLED:
        current = signal.getsignal(signum)
        if signum in _previous or not _is_default(current):
            continue  # already in the chain, the application's own, ignored, or not Python's
        _previous[signum] = signal.default_int_handler if _is_asyncio_runner(current) else current
        signal.signal(signum, _handle)


def uninstall_signal_handlers() -> None:
    """Put back the handlers found at install time, where ours is still the current one.

    Where another handler was chained in front of ours, ours stays in that chain but,
    while disabled, only passes the signal on as if it were not there.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in list(_previous.items()):
        if signal.getsignal(signum) is _handle:
            signal.signal(signum, previous)
            del _previous[signum]
    _state["stopping_since"] = None


def reset_signal_handling() -> None:
    """Forget every chain entry (restoring handlers where ours is current); for tests."""
    uninstall_signal_handlers()
    _previous.clear()


def _pass_on(signum: int, frame: FrameType | None, previous: Any) -> None:
    """Behave as the handler we replaced would have."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _handle(signum: int, frame: FrameType | None) -> None:
    previous = _previous.get(signum)
    if not _state["enabled"]:
        _pass_on(signum, frame, previous)
        return
    since = _state["stopping_since"]
    if since is not None:
        if time.monotonic() - since > shutdown_timeout():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        logger.warning("signal %d again: shutdown already in progress", signum)
        return
    _state["stopping_since"] = time.monotonic()
    _stop(signum)


def _exit_exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)


def _first_attr(obj: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _in_db_call(task: asyncio.Task[Any]) -> bool | None:
    """True if suspended inside SQLAlchemy's greenlet bridge; None where it can't be seen."""
    obj: Any = task.get_coro()
    while obj is not None:
        code = _first_attr(obj, ("cr_code", "gi_code", "ag_code"))
        if code is None:
            return None if type(obj).__name__ in _OPAQUE else False
        if code is _SPAWN_CODE:
            return True
        obj = _first_attr(obj, ("cr_await", "gi_yieldfrom", "ag_await"))
    return False


def _busy(loop: asyncio.AbstractEventLoop) -> bool:
    """A task of ``loop`` is in a database call (or may be, while connections are out)."""
    states = [_in_db_call(task) for task in asyncio.all_tasks(loop)]
    return any(states) or (None in states and checked_out_on(loop) > 0)


def _stop_when_idle(loop: asyncio.AbstractEventLoop, exc: BaseException, deadline: float) -> None:
    """Re-checked every loop iteration: raise at the first point no DB call is in flight."""
    if not _busy(loop):
        raise exc
    if time.monotonic() >= deadline:
        owners = force_busy_connections(loop)
        logger.warning(
            "shutdown timeout (%.1fs): cancelling %d busy connection(s); their server sessions "
            "will be killed: %s",
            shutdown_timeout(),
            len(owners),
            "; ".join(owners) or "owners unknown",
        )
        raise exc
    loop.call_soon(_stop_when_idle, loop, exc, deadline)


def _stop(signum: int) -> None:
    """Stop every running kit loop at a clean point; raise here if none runs in this thread."""
    logger.info("signal %d: stopping, rolling back open transactions and closing connections", signum)
    here: asyncio.AbstractEventLoop | None = asyncio._get_running_loop()
    deadline = time.monotonic() + shutdown_timeout()
    for loop in running_loops():
        if loop is not here:
            stop = partial(_stop_when_idle, loop, SystemExit(128 + signum), deadline)
            loop.call_soon_threadsafe(stop)
    if here is not None:
        here.call_soon_threadsafe(partial(_stop_when_idle, here, _exit_exception(signum), deadline))
        return
    raise _exit_exception(signum)
