"""One event loop and one engine per worker process; tasks run their coroutines on it.

Prefork children call :func:`start_worker_loop` from ``worker_process_init`` and
:func:`stop_worker_loop` from ``worker_process_shutdown``. :func:`run` is what
tasks use (no ``asyncio.run()`` per task, no new pool per task)::

    start_worker_loop(settings)          # in the child, after fork
    result = run(do_work())              # on that loop, with that engine
    stop_worker_loop()                   # disposes the engine on the same loop

Outside a prefork child (solo pool, a script, a test) :func:`run` starts the loop
lazily; after a fork the inherited loop and pool are dropped, never reused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from internal.config.load_config import Settings
from internal.infra.database import close_async_db, init_async_db, reset_async_db

__all__ = ["current_loop", "run", "start_worker_loop", "stop_worker_loop"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None
_thread: int | None = None
_lock = threading.Lock()


def start_worker_loop(settings: Settings | None = None) -> asyncio.AbstractEventLoop:
    """Create this process's loop and engine (idempotent within one process)."""
    global _loop, _pid, _thread
    with _lock:
        if _loop is not None and _pid == os.getpid() and not _loop.is_closed():
            return _loop
        if _pid is not None and _pid != os.getpid():
            logger.debug("forked: dropping the loop and pool inherited from pid %s", _pid)
        reset_async_db()  # never touch sockets inherited from the parent
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # Celery owns SIGTERM here (warm/cold shutdown); the kit must not add a handler.
        loop.run_until_complete(init_async_db(settings, handle_signals=False))
        _loop, _pid, _thread = loop, os.getpid(), threading.get_ident()
    logger.info("worker loop started in pid %d", _pid)
    return loop


def stop_worker_loop(timeout: float | None = None) -> None:
    """Dispose the engine on the loop that created it, then close the loop."""
    global _loop, _pid
    with _lock:
        loop, pid = _loop, _pid
        _loop, _pid = None, None
    if loop is None or loop.is_closed():
        return
    if pid != os.getpid():  # inherited: not ours to close
        reset_async_db()
        return
    try:
        report = loop.run_until_complete(close_async_db(timeout))
        if report is not None:
            logger.info("worker pid %d closed its engine (%d connection(s) forced)", pid, report.forced)
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def current_loop() -> asyncio.AbstractEventLoop:
    """This process's worker loop, started on first use."""
    loop = _loop
    if loop is None or _pid != os.getpid() or loop.is_closed():
        loop = start_worker_loop()
    return loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on this process's worker loop."""
    loop = current_loop()
    if _thread is not None and _thread != threading.get_ident():
        coro.close()
        raise RuntimeError(
            "run() called from another thread than the worker loop's: thread pools (--pool threads) "
            "are not supported; use prefork (default) or solo"
        )
    if loop.is_running():
        coro.close()
        raise RuntimeError("run() called from inside the worker loop; await the coroutine instead")
    return loop.run_until_complete(coro)
