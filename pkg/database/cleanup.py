"""Automatic engine cleanup: at loop end, at interpreter exit, and in forked children.

:func:`register_engine` (called by :func:`new_async_engine`) keeps a weak reference to
the engine. The first connection an engine opens on an event loop plants a sentinel
async generator on that loop; ``asyncio.run()`` closes it during
``shutdown_asyncgens()``, i.e. still ON the owning loop, and the sentinel disposes the
engine there. The engine stays usable: its pool reconnects lazily on the next loop.
An ``atexit`` hook disposes what is left on loops that were never shut down, and an
``os.register_at_fork`` hook gives a forked child fresh pools without touching the
parent's sockets.

Example::

    configure_cleanup(shutdown_timeout=5)   # bound every automatic dispose
    asyncio.run(main())                     # engines used in main() are disposed here
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.engine import mask_url
from pkg.database.leaks import attach_leak_tracker, checked_out_connections, leak_tracker
from pkg.database.shutdown import close_engine, kill_server_sessions, server_session_ids

__all__ = [
    "checked_out_on",
    "configure_cleanup",
    "dispose_all",
    "force_busy_connections",
    "forget_engine",
    "register_engine",
    "registered_engines",
    "release_engine",
    "reset_cleanup",
    "running_loops",
    "shutdown_timeout",
]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _LoopState:
    """Engines that opened connections on one loop, and the sentinel that disposes them."""

    engines: weakref.WeakSet[AsyncEngine] = field(default_factory=weakref.WeakSet)
    sentinel: AsyncGenerator[None, None] | None = None
    abandoned: bool = False
    pending: set[asyncio.Task[Any]] = field(default_factory=set)
    to_kill: list[tuple[AsyncEngine, list[int]]] = field(default_factory=list)


_engines: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()
_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
_engine_loop: weakref.WeakKeyDictionary[AsyncEngine, weakref.ref[asyncio.AbstractEventLoop]] = (
    weakref.WeakKeyDictionary()
)
_fork_orphans: list[Any] = []  # a forked child keeps the parent's pools alive, untouched
_config: dict[str, Any] = {"shutdown_timeout": 10.0, "hooks": False}
_lock = threading.Lock()


def configure_cleanup(shutdown_timeout: float | None = None) -> None:
    """Set the bound (seconds) of every automatic dispose."""
    if shutdown_timeout is not None:
        _config["shutdown_timeout"] = shutdown_timeout


def reset_cleanup() -> None:
    """Forget per-loop bookkeeping and kept-alive orphan pools; restore the default timeout.

    Registered engines stay registered (see :func:`forget_engine`). For tests: orphans
    released here may be garbage-collected with their sockets.
    """
    for state in list(_loops.values()):
        _abandon(state)
    _loops.clear()
    _engine_loop.clear()
    _fork_orphans.clear()
    _config["shutdown_timeout"] = 10.0


def shutdown_timeout() -> float:
    return float(_config["shutdown_timeout"])


def running_loops() -> list[asyncio.AbstractEventLoop]:
    """Loops with kit connections that are running now (in any thread)."""
    return [loop for loop in list(_loops) if loop.is_running()]


def checked_out_on(loop: asyncio.AbstractEventLoop) -> int:
    """Connections checked out right now by the engines that connected on ``loop``."""
    state = _loops.get(loop)
    if state is None:
        return 0
    return sum(int(getattr(e.sync_engine.pool, "checkedout", lambda: 0)()) for e in list(state.engines))


def force_busy_connections(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Past the shutdown deadline: note the server sessions still busy on ``loop``, to be
    killed on the server when the loop's engines are disposed. Returns their owners."""
    state = _loops.get(loop)
    owners: list[str] = []
    for engine in list(state.engines) if state is not None else []:
        held = checked_out_connections(engine)
        pids = server_session_ids(engine, held)
        if pids and state is not None:
            state.to_kill.append((engine, pids))
        owners.extend(h.describe() for h in held)
    return owners


def _install_process_hooks() -> None:
    with _lock:
        if _config["hooks"]:
            return
        _config["hooks"] = True
    atexit.register(_at_exit)
    os.register_at_fork(after_in_child=_after_fork_in_child)


def register_engine(engine: AsyncEngine) -> AsyncEngine:
    """Track ``engine`` (weakly) for automatic disposal; idempotent."""
    if engine in _engines:
        return engine
    _install_process_hooks()
    _engines.add(engine)
    attach_leak_tracker(engine, mask_url(engine.url))
    ref = weakref.ref(engine)
    event.listen(engine.sync_engine, "connect", lambda *_: _on_connect(ref))
    from pkg.database.signals import install_signal_handlers  # signals imports this module

    install_signal_handlers()
    return engine


def forget_engine(engine: AsyncEngine) -> None:
    """Stop tracking ``engine`` (the caller takes over its disposal)."""
    _engines.discard(engine)
    _engine_loop.pop(engine, None)
    for state in list(_loops.values()):
        state.engines.discard(engine)


def registered_engines() -> list[AsyncEngine]:
    return list(_engines)


def _on_connect(ref: weakref.ref[AsyncEngine]) -> None:
    """A new DBAPI connection: remember its loop and plant the loop's sentinel."""
    engine = ref()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if engine is None or engine not in _engines:
        return
    state = _loops.get(loop)
    if state is None:
        state = _loops[loop] = _LoopState()
    state.engines.add(engine)
    _engine_loop[engine] = weakref.ref(loop)
    if state.sentinel is None:
        state.sentinel = _sentinel(loop, state)
        loop.call_soon(_start, state.sentinel)


def _start(agen: AsyncGenerator[None, None]) -> None:
    """Run the sentinel to its ``yield`` so the loop's asyncgen hooks know it."""
    step = agen.__anext__()
    with contextlib.suppress(StopIteration):
        step.send(None)


async def _sentinel(loop: asyncio.AbstractEventLoop, state: _LoopState) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if not state.abandoned:
            await _dispose_loop(loop, state)


async def _dispose_loop(loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
    if state.pending:
        await asyncio.gather(*state.pending, return_exceptions=True)
    for engine in list(state.engines):
        await _close_quietly(engine)
    for engine, pids in state.to_kill:  # sessions whose statements were cut off by a forced stop
        await kill_server_sessions(engine, pids)
    state.to_kill.clear()
    state.engines.clear()
    state.sentinel = None  # a later connection on this loop (if any) plants a new one


async def _close_quietly(engine: AsyncEngine) -> None:
    try:
        await close_engine(engine, _config["shutdown_timeout"])
    except Exception as exc:
        logger.warning("automatic dispose of %s failed: %r", mask_url(engine.url), exc)


def _owner_loop(engine: AsyncEngine) -> asyncio.AbstractEventLoop | None:
    ref = _engine_loop.get(engine)
    return ref() if ref is not None else None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def release_engine(engine: AsyncEngine, timeout: float | None = None) -> None:
    """Dispose ``engine`` from sync code, on the loop that owns its connections.

    On the running owner loop the dispose is scheduled (and awaited at loop end); on an
    idle owner loop it runs now; on a loop of another thread it is submitted there.
    """
    timeout = _config["shutdown_timeout"] if timeout is None else timeout
    loop = _owner_loop(engine)
    if loop is None or loop.is_closed():
        _drop_pool(engine, loop)
    elif loop is _running_loop():
        state = _loops.setdefault(loop, _LoopState())
        task = loop.create_task(close_engine(engine, timeout))
        state.pending.add(task)
        task.add_done_callback(state.pending.discard)
    elif loop.is_running():
        asyncio.run_coroutine_threadsafe(close_engine(engine, timeout), loop)
    else:
        loop.run_until_complete(close_engine(engine, timeout))


def _drop_pool(engine: AsyncEngine, loop: asyncio.AbstractEventLoop | None) -> None:
    """No usable owner loop: nothing to await on. Warn if connections are left behind."""
    pool = engine.sync_engine.pool
    left = int(getattr(pool, "checkedin", lambda: 0)()) + int(getattr(pool, "checkedout", lambda: 0)())
    if left and loop is not None:
        logger.warning(
            "%d connection(s) of %s belong to a closed event loop and cannot be closed gracefully; "
            "run the loop with asyncio.run() so the kit disposes them on it",
            left,
            mask_url(engine.url),
        )
    if left:
        _fork_orphans.append(pool)  # never garbage-collect live sockets of a dead loop mid-run
    engine.sync_engine.dispose(close=False)


def dispose_all(timeout: float | None = None) -> None:
    """Dispose every registered engine from sync code (what the exit hook does)."""
    for engine in list(_engines):
        try:
            release_engine(engine, timeout)
        except Exception as exc:
            logger.warning("dispose of %s at exit failed: %r", mask_url(engine.url), exc)


def _at_exit() -> None:
    dispose_all()
    for state in list(_loops.values()):
        _abandon(state)


def _abandon(state: _LoopState) -> None:
    """Finish a sentinel without awaiting (its loop is gone) so it is not collected noisily."""
    state.abandoned = True
    agen, state.sentinel = state.sentinel, None
    if agen is None:
        return
    with contextlib.suppress(StopIteration, RuntimeError):
        agen.aclose().send(None)


def _after_fork_in_child() -> None:
    """Fresh pools in the child; the parent's connections are kept alive, untouched."""
    for state in list(_loops.values()):
        _abandon(state)
    _loops.clear()
    _engine_loop.clear()
    for engine in list(_engines):
        _fork_orphans.append(engine.sync_engine.pool)
        tracker = leak_tracker(engine)
        if tracker is not None:
            tracker.forget()
        engine.sync_engine.dispose(close=False)
