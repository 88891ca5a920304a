"""Automatic cleanup in-process: weak registry, dispose at asyncio.run() end on the owning
loop, release from sync code, and signal handlers that chain (real signals via os.kill)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import uuid
from collections.abc import Iterator
from types import FrameType

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database import new_async_engine
from pkg.database.lifecycle import (
    registered_engines,
    release_engine,
    reset_auto_dispose,
    reset_signal_handling,
    set_shutdown_timeout,
    set_signal_handling,
    shutdown_timeout,
    signal_handling_enabled,
)
from pkg.database.lifecycle.signals import install_signal_handlers
from pkg.database.testing import assert_no_checked_out_connections
from tests.conftest import Backend
from tests.faults.helpers import server_connections


def _idle(engine: AsyncEngine) -> int:
    return int(engine.sync_engine.pool.checkedin())  # type: ignore[attr-defined]


async def _use(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


def test_registry_is_weak() -> None:
    engine = new_async_engine("sqlite+aiosqlite://", slow_query_threshold=None)
    assert engine in registered_engines()
    ident = id(engine)
    del engine
    gc.collect()
    assert ident not in {id(e) for e in registered_engines()}


def test_each_asyncio_run_disposes_on_its_own_loop(backend: Backend) -> None:
    app = f"kit-c-{uuid.uuid4().hex[:8]}"
    engine = backend.engine(application_name=app)
    for _ in range(3):  # a fresh loop each time: no "attached to a different loop"
        assert asyncio.run(_use(engine)) == 1
        assert _idle(engine) == 0
        if backend.name != "sqlite":
            assert asyncio.run(server_connections(backend, app)) == 0


def test_release_on_running_loop_is_finished_at_loop_end(backend: Backend) -> None:
    engine = backend.engine()

    async def use_then_release() -> None:
        await _use(engine)
        release_engine(engine)  # sync call on the owner loop: scheduled, not dropped

    asyncio.run(use_then_release())
    assert _idle(engine) == 0
    assert_no_checked_out_connections(engine)


def test_release_from_sync_code_runs_on_the_idle_owner_loop(backend: Backend) -> None:
    engine = backend.engine()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_use(engine))
        assert _idle(engine) == 1
        release_engine(engine)
        assert _idle(engine) == 0
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.fixture
def clean_sigterm() -> Iterator[None]:
    """Start without the kit's handlers; put SIGTERM and the kit's handlers back afterwards."""
    enabled = signal_handling_enabled()
    reset_signal_handling()
    before = signal.getsignal(signal.SIGTERM)
    set_signal_handling(True)
    reset_signal_handling()
    try:
        yield
    finally:
        reset_signal_handling()
        signal.signal(signal.SIGTERM, before)
        set_signal_handling(enabled)


def test_sigterm_chains_to_the_previous_handler(clean_sigterm: None) -> None:
    calls: list[int] = []

    def app_handler(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    signal.signal(signal.SIGTERM, app_handler)
    install_signal_handlers()
    assert signal.getsignal(signal.SIGTERM) is not app_handler
    os.kill(os.getpid(), signal.SIGTERM)
    assert calls == [signal.SIGTERM]  # the application's handler ran; nothing else happened
    set_signal_handling(False)
    assert signal.getsignal(signal.SIGTERM) is app_handler


def test_ignored_signal_stays_ignored(clean_sigterm: None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    install_signal_handlers()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGTERM)  # still ignored: the test process lives on


def test_reinstall_behind_an_app_handler_neither_loops_nor_swallows(clean_sigterm: None) -> None:
    calls: list[str] = []

    def base(signum: int, frame: FrameType | None) -> None:
        calls.append("base")

    signal.signal(signal.SIGTERM, base)
    install_signal_handlers()
    kit = signal.getsignal(signal.SIGTERM)
    assert callable(kit)

    def front(signum: int, frame: FrameType | None) -> None:  # e.g. a drain handler chained later
        calls.append("front")
        kit(signum, frame)

    signal.signal(signal.SIGTERM, front)
    install_signal_handlers()  # another engine is created: must not wrap `front` (a cycle)
    assert signal.getsignal(signal.SIGTERM) is front
    os.kill(os.getpid(), signal.SIGTERM)
    assert calls == ["front", "base"]
    set_signal_handling(False)  # still chained behind `front`: now only passes the signal on
    assert signal.getsignal(signal.SIGTERM) is front
    os.kill(os.getpid(), signal.SIGTERM)
    assert calls == ["front", "base", "front", "base"]


def test_reset_cleanup_restores_defaults() -> None:
    set_shutdown_timeout(1.5)
    assert shutdown_timeout() == 1.5
    reset_auto_dispose()
    assert shutdown_timeout() == 10.0
    engine = new_async_engine("sqlite+aiosqlite:///:memory:", slow_query_threshold=None)
    for _ in range(2):  # bookkeeping rebuilds itself on each new loop
        assert asyncio.run(_use(engine)) == 1
