"""Automatic cleanup in-process: weak registry, dispose at asyncio.run() end on the owning
loop, release from sync code, and signal handlers that chain (real signals via os.kill)."""

from __future__ import annotations

import asyncio
import gc
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database import new_async_engine
from pkg.database.lifecycle import (
    registered_engines,
    release_engine,
    reset_auto_dispose,
    set_shutdown_timeout,
    shutdown_timeout,
)
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


def test_reset_cleanup_restores_defaults() -> None:
    set_shutdown_timeout(1.5)
    assert shutdown_timeout() == 1.5
    reset_auto_dispose()
    assert shutdown_timeout() == 10.0
    engine = new_async_engine("sqlite+aiosqlite:///:memory:", slow_query_threshold=None)
    for _ in range(2):  # bookkeeping rebuilds itself on each new loop
        assert asyncio.run(_use(engine)) == 1
