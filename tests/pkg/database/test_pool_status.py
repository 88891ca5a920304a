"""pool_status(): one shape for every pool, waiters and cumulative timeouts on the kit pool."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from pkg.database import new_async_engine, pool_status
from pkg.database.pool import KitAsyncQueuePool, kit_pool_options
from tests.conftest import Backend

KEYS = {"pool", "size", "checked_out", "overflow", "idle", "waiters", "timeouts"}


async def test_memory_sqlite_has_the_same_shape() -> None:
    engine = new_async_engine("sqlite+aiosqlite://", slow_query_threshold=None)
    try:
        assert kit_pool_options(engine.url) == {}
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        status = pool_status(engine)
        assert set(status) == KEYS and status["waiters"] == 0 and status["timeouts"] == 0
    finally:
        await engine.dispose()


async def test_waiters_and_timeouts_survive_dispose(backend: Backend) -> None:
    options = kit_pool_options(backend.url)
    engine = backend.engine(pool_size=1, max_overflow=0, pool_timeout=0.3, **options)
    try:
        assert isinstance(engine.sync_engine.pool, KitAsyncQueuePool)
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            waiter = asyncio.create_task(engine.connect().__aenter__())
            await asyncio.sleep(0.1)
            assert pool_status(engine)["waiters"] == 1 and pool_status(engine)["checked_out"] == 1
            with pytest.raises(sa_exc.TimeoutError):
                await waiter
        assert pool_status(engine)["timeouts"] == 1 and pool_status(engine)["waiters"] == 0
        await engine.dispose()
        assert pool_status(engine)["timeouts"] == 1  # cumulative per engine
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
