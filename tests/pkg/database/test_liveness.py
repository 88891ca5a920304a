"""Pre-ping that costs nothing on a hot connection (pkg/database/liveness.py).

Pings are counted at the dialect's ``do_ping`` (what SQLAlchemy's own pre-ping calls too).
Dead connections after kills and restarts: tests/faults/test_server_faults.py, test_restart.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.errors import ConfigurationError
from tests.conftest import Backend


def count_pings(engine: AsyncEngine) -> list[int]:
    """A one-item list counting the dialect's pings on ``engine``."""
    dialect = engine.sync_engine.dialect
    original: Callable[[Any], bool] = dialect.do_ping
    seen = [0]

    def counted(dbapi_connection: Any) -> bool:
        seen[0] += 1
        return original(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    return seen


async def select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_hot_connection_is_not_pinged(backend: Backend) -> None:
    engine = backend.engine(pool_size=1, max_overflow=0)
    try:
        pings = count_pings(engine)
        for _ in range(5):
            await select_one(engine)
        assert pings[0] == 0
    finally:
        await engine.dispose()


async def test_idle_past_threshold_is_pinged(backend: Backend) -> None:
    engine = backend.engine(pool_size=1, max_overflow=0, pool_ping_after=0)  # every checkout is "idle"
    try:
        await select_one(engine)  # a new connection: never pinged
        pings = count_pings(engine)
        for _ in range(3):
            await select_one(engine)
        assert pings[0] == 3
    finally:
        await engine.dispose()


async def test_connection_is_pinged_after_an_error(backend: Backend) -> None:
    engine = backend.engine(pool_size=1, max_overflow=0)
    try:
        await select_one(engine)
        pings = count_pings(engine)
        with pytest.raises(DBAPIError):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT * FROM no_such_table_kit"))
        await select_one(engine)
        assert pings[0] == 1  # the connection that failed is checked once
        await select_one(engine)
        assert pings[0] == 1
    finally:
        await engine.dispose()


def test_pre_ping_off_attaches_nothing(backend: Backend) -> None:
    engine = backend.engine(pool_pre_ping=False)
    assert not engine.sync_engine.pool._pre_ping
    assert not engine.sync_engine.pool.dispatch.checkout or all(
        "liveness" not in getattr(fn, "__module__", "") for fn in engine.sync_engine.pool.dispatch.checkout
    )
    engine.sync_engine.dispose()


@pytest.mark.parametrize("bad", [-1, "5", True, float("nan")])
def test_bad_threshold_is_refused(backend: Backend, bad: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        backend.engine(pool_ping_after=bad)
    assert caught.value.key == "pool_ping_after"
