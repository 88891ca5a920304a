"""Exactness on the real servers, read from the Prometheus exporter: every statement, every
checkout, every waiter, timeout and invalidation is counted once. (Not run through
PgBouncer: these are about one server session and one pool.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from pkg.database.errors import ConnectionLostError, PoolTimeoutError, translate_error
from tests.conftest import Backend
from tests.faults.helpers import admin_execute, admin_scalar, wait_until
from tests.pkg.database.metrics.conftest import Prom


async def poll(check: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Yield to the loop until ``check()`` holds (the waiter runs on this same loop)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def test_100_queries_give_a_histogram_count_of_100(backend: Backend, prom: Prom) -> None:
    engine = backend.engine(metrics_name=prom.engine)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # dialect initialisation statements happen here
        before = prom.queries()
        before_out = prom.count("kit_db_pool_wait_seconds")
        for i in range(100):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT :i + 0"), {"i": i})).scalar_one() == i
        assert prom.queries() - before == 100
        assert prom.count("kit_db_pool_wait_seconds") - before_out == 100  # one checkout each
        assert prom.count("kit_db_pool_use_seconds") - before_out == 100  # one checkin each
        assert prom.queries(outcome="error") == 0
    finally:
        await engine.dispose()


async def test_three_sessions_held_are_three_used(backend: Backend, prom: Prom) -> None:
    engine = backend.engine(metrics_name=prom.engine, pool_size=5)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(3):
                conn = await stack.enter_async_context(engine.connect())
                await conn.execute(text("SELECT 1"))
            assert prom.connections("used") == 3 and prom.connections("idle") == 0
            assert prom.value("kit_db_pool_connections_created_total") == 3
        assert prom.connections("used") == 0 and prom.connections("idle") == 3
        assert prom.value("kit_db_pool_max_connections") == 15  # pool_size 5 + max_overflow 10
        await engine.dispose()  # closes the three idle connections
        assert prom.connections("idle") == 0
    finally:
        await engine.dispose()


async def test_an_exhausted_pool_has_a_pending_request_then_a_timeout(backend: Backend, prom: Prom) -> None:
    engine = backend.engine(metrics_name=prom.engine, pool_size=1, max_overflow=0, pool_timeout=0.5)
    try:
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            assert prom.value("kit_db_pool_pending_requests") == 0
            waiter = asyncio.create_task(engine.connect().__aenter__())
            await poll(lambda: prom.value("kit_db_pool_pending_requests") >= 1, "a pending request")
            assert prom.value("kit_db_pool_timeouts_total") == 0
            with pytest.raises(Exception) as caught:
                await waiter
            assert isinstance(translate_error(caught.value), PoolTimeoutError)
        assert prom.value("kit_db_pool_timeouts_total") == 1
        assert prom.value("kit_db_errors_total", error="PoolTimeoutError") == 1
        assert prom.value("kit_db_pool_pending_requests") == 0
        assert prom.connections("used") == 0 and prom.connections("idle") == 1
    finally:
        await engine.dispose()


async def _server_session_id(conn: AsyncConnection, backend: Backend) -> int:
    sql = "SELECT pg_backend_pid()" if backend.name == "postgresql" else "SELECT connection_id()"
    return int((await conn.execute(text(sql))).scalar_one())


async def _session_alive(backend: Backend, session_id: int) -> bool:
    if backend.name == "postgresql":
        sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = :id"
    else:
        sql = "SELECT count(*) FROM information_schema.processlist WHERE id = :id"
    return int(await admin_scalar(backend, sql, {"id": session_id}) or 0) > 0  # type: ignore[call-overload]


async def test_a_killed_backend_is_one_invalidation(server_backend: Backend, prom: Prom) -> None:
    backend = server_backend
    engine = backend.engine(metrics_name=prom.engine)
    try:
        with pytest.raises(Exception) as caught:
            async with engine.connect() as conn:
                session_id = await _server_session_id(conn, backend)
                if backend.name == "postgresql":
                    await admin_scalar(backend, "SELECT pg_terminate_backend(:id)", {"id": session_id})
                else:
                    await admin_execute(backend, f"KILL CONNECTION {session_id}")

                async def gone() -> bool:
                    return not await _session_alive(backend, session_id)

                await wait_until(gone, "the killed session to leave the server")
                assert prom.value("kit_db_pool_invalidations_total", reason="disconnect") == 0
                await conn.execute(text("SELECT 1"))
        assert isinstance(translate_error(caught.value), ConnectionLostError)
        assert prom.value("kit_db_pool_invalidations_total", reason="disconnect") == 1
        assert prom.value("kit_db_errors_total", error="ConnectionLostError") == 1
        assert prom.connections("used") == 0 and prom.connections("idle") == 0  # discarded
        async with engine.connect() as conn:  # a fresh connection replaces it
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        assert prom.value("kit_db_pool_connections_created_total") == 2
        assert prom.connections("idle") == 1
    finally:
        await engine.dispose()
