"""The weak engine registry: which engines the kit tracks, and which loop each connected on.

Pure bookkeeping shared by auto-dispose and signal handling; it closes nothing itself.

Example::

    set_shutdown_timeout(5)      # bound every automatic dispose and signal drain
    registered_engines()         # engines created by new_async_engine() still alive
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.lifecycle.leaks import checked_out_connections
from pkg.database.lifecycle.shutdown import server_session_ids

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "LoopState",
    "add_engine",
    "checked_out_on",
    "clear_loops",
    "force_busy_connections",
    "forget_engine",
    "is_registered",
    "loop_of",
    "loop_state",
    "loop_states",
    "note_connection",
    "registered_engines",
    "running_loops",
    "set_shutdown_timeout",
    "shutdown_timeout",
]

DEFAULT_SHUTDOWN_TIMEOUT = 10.0


@dataclass(eq=False)
class LoopState:
    """Engines that opened connections on one loop, and the sentinel that disposes them."""

    engines: weakref.WeakSet[AsyncEngine] = field(default_factory=weakref.WeakSet)
    sentinel: AsyncGenerator[None, None] | None = None
    abandoned: bool = False
    pending: set[asyncio.Task[Any]] = field(default_factory=set)
    to_kill: list[tuple[AsyncEngine, list[int]]] = field(default_factory=list)


_engines: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()
_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = weakref.WeakKeyDictionary()
_engine_loop: weakref.WeakKeyDictionary[AsyncEngine, weakref.ref[asyncio.AbstractEventLoop]] = (
    weakref.WeakKeyDictionary()
)
_config: dict[str, float] = {"shutdown_timeout": DEFAULT_SHUTDOWN_TIMEOUT}


def set_shutdown_timeout(seconds: float | None = None) -> None:
    """Bound (seconds) every automatic dispose and signal drain; None restores the default."""
    _config["shutdown_timeout"] = DEFAULT_SHUTDOWN_TIMEOUT if seconds is None else float(seconds)


def shutdown_timeout() -> float:
    """The bound set by :func:`set_shutdown_timeout`."""
    return _config["shutdown_timeout"]


def add_engine(engine: AsyncEngine) -> bool:
    """Track ``engine`` weakly; False if it was tracked already."""
    if engine in _engines:
        return False
    _engines.add(engine)
    return True


def is_registered(engine: AsyncEngine) -> bool:
    return engine in _engines


def forget_engine(engine: AsyncEngine) -> None:
    """Stop tracking ``engine`` (the caller takes over its disposal)."""
    _engines.discard(engine)
    _engine_loop.pop(engine, None)
    for state in list(_loops.values()):
        state.engines.discard(engine)


def registered_engines() -> list[AsyncEngine]:
    """The live engines the kit tracks."""
    return list(_engines)


def note_connection(engine: AsyncEngine, loop: asyncio.AbstractEventLoop) -> LoopState:
    """Remember that ``engine`` connected on ``loop``; returns the loop's state."""
    state = loop_state(loop)
    state.engines.add(engine)
    _engine_loop[engine] = weakref.ref(loop)
    return state


def loop_state(loop: asyncio.AbstractEventLoop) -> LoopState:
    """The state of ``loop``, created on first use."""
    state = _loops.get(loop)
    if state is None:
        state = _loops[loop] = LoopState()
    return state


def loop_states() -> list[LoopState]:
    return list(_loops.values())


def clear_loops() -> None:
    """Forget every loop's state and every engine's owner loop (callers abandon sentinels first)."""
    _loops.clear()
    _engine_loop.clear()


def loop_of(engine: AsyncEngine) -> asyncio.AbstractEventLoop | None:
    """The loop ``engine`` last connected on, if it still exists."""
    ref = _engine_loop.get(engine)
    return ref() if ref is not None else None


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
    killed on the server when the loop's engines are disposed (none behind PgBouncer: see
    :func:`server_session_ids`; their sockets are closed). Returns their owners."""
    state = _loops.get(loop)
    owners: list[str] = []
    for engine in list(state.engines) if state is not None else []:
        held = checked_out_connections(engine)
        pids = server_session_ids(engine, held)
        if pids and state is not None:
            state.to_kill.append((engine, pids))
        owners.extend(h.describe() for h in held)
    return owners
