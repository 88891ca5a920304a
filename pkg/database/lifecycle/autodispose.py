"""Automatic disposal: at loop end, at interpreter exit, and in forked children.

:func:`watch_engine` (called when an engine is registered) makes the first
connection an engine opens on an event loop plant a sentinel async generator on that
loop; ``asyncio.run()`` closes it during ``shutdown_asyncgens()``, i.e. still ON the
owning loop, and the sentinel disposes the engine there. The engine stays usable: its
pool reconnects lazily on the next loop. An ``atexit`` hook disposes what is left on
loops that were never shut down, and an ``os.register_at_fork`` hook gives a forked
child fresh pools without touching the parent's sockets.

Example::

    set_shutdown_timeout(5)     # bound every automatic dispose
    asyncio.run(main())         # engines used in main() are disposed here
    release_engine(engine)      # from sync code: close on the loop that owns it
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
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.lifecycle import registry
from pkg.database.lifecycle.leaks import leak_tracker
from pkg.database.lifecycle.registry import LoopState
from pkg.database.lifecycle.shutdown import close_engine, kill_server_sessions
from pkg.database.utils import mask_url

__all__ = ["release_all", "release_engine", "reset_auto_dispose", "watch_engine"]

logger = logging.getLogger(__name__)


_fork_orphans: list[Any] = []  # a forked child keeps the parent's pools alive, untouched
_hooks = {"installed": False}
_lock = threading.Lock()


def reset_auto_dispose() -> None:
    """Forget per-loop bookkeeping and kept-alive orphan pools; restore the default timeout.

    Registered engines stay registered. For tests: orphans released here may be
    garbage-collected with their sockets.
    """
    for state in registry.loop_states():
        _abandon(state)
    registry.clear_loops()
    _fork_orphans.clear()
    registry.set_shutdown_timeout(None)


def _install_process_hooks() -> None:
    with _lock:
        if _hooks["installed"]:
            return
        _hooks["installed"] = True
    atexit.register(_at_exit)
    os.register_at_fork(after_in_child=_after_fork_in_child)


def watch_engine(engine: AsyncEngine) -> None:
    """Dispose ``engine`` automatically on the loops it connects on, at exit and after fork."""
    _install_process_hooks()
    ref = weakref.ref(engine)
    event.listen(engine.sync_engine, "connect", lambda *_: _on_connect(ref))


def _on_connect(ref: weakref.ref[AsyncEngine]) -> None:
    """A new DBAPI connection: remember its loop and plant the loop's sentinel."""
    engine = ref()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if engine is None or not registry.is_registered(engine):
        return
    state = registry.note_connection(engine, loop)
    if state.sentinel is None:
        state.sentinel = _sentinel(loop, state)
        loop.call_soon(_start, state.sentinel)


def _start(agen: AsyncGenerator[None, None]) -> None:
    """Run the sentinel to its ``yield`` so the loop's asyncgen hooks know it."""
    step = agen.__anext__()
    with contextlib.suppress(StopIteration):
        step.send(None)


async def _sentinel(loop: asyncio.AbstractEventLoop, state: LoopState) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if not state.abandoned:
            await _dispose_loop(loop, state)


async def _dispose_loop(loop: asyncio.AbstractEventLoop, state: LoopState) -> None:
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
        await close_engine(engine, registry.shutdown_timeout())
    except Exception as exc:
        logger.warning("automatic dispose of %s failed: %r", mask_url(engine.url), exc)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def release_engine(engine: AsyncEngine, timeout: float | None = None) -> None:
    """Close ``engine`` from sync code, on the loop that owns its connections.

    On the running owner loop the dispose is scheduled (and awaited at loop end); on an
    idle owner loop it runs now; on a loop of another thread it is submitted there.
    """
    timeout = registry.shutdown_timeout() if timeout is None else timeout
    loop = registry.loop_of(engine)
    if loop is None or loop.is_closed():
        _drop_pool(engine, loop)
    elif loop is _running_loop():
        state = registry.loop_state(loop)
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


def release_all(timeout: float | None = None) -> None:
    """Release every registered engine from sync code (what the exit hook does)."""
    for engine in registry.registered_engines():
        try:
            release_engine(engine, timeout)
        except Exception as exc:
            logger.warning("dispose of %s at exit failed: %r", mask_url(engine.url), exc)


def _at_exit() -> None:
    release_all()
    for state in registry.loop_states():
        _abandon(state)


def _abandon(state: LoopState) -> None:
    """Finish a sentinel without awaiting (its loop is gone) so it is not collected noisily."""
    state.abandoned = True
    agen, state.sentinel = state.sentinel, None
    if agen is None:
        return
    with contextlib.suppress(StopIteration, RuntimeError):
        agen.aclose().send(None)


def _after_fork_in_child() -> None:
    """Fresh pools in the child; the parent's connections are kept alive, untouched."""
    for state in registry.loop_states():
        _abandon(state)
    registry.clear_loops()
    for engine in registry.registered_engines():
        _fork_orphans.append(engine.sync_engine.pool)
        tracker = leak_tracker(engine)
        if tracker is not None:
            tracker.forget()
        engine.sync_engine.dispose(close=False)
