"""Faults 1-5 in-process against the real servers: killed backends (idle and mid-
transaction), an exhausted pool, and a query stuck at shutdown. (Restarts: test_restart.py.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from internal.config.load_config import Settings
from internal.infra import database as infra
from pkg.database.errors import ConnectionLostError, DatabaseError, PoolTimeoutError
from pkg.database.testing import assert_no_checked_out_connections
from tests.conftest import Backend
from tests.faults.helpers import (
    admin_execute,
    admin_scalar,
    statement_running,
    wait_no_connections,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("fault_backend", ["postgresql", "mysql"], indirect=True),
]


def settings(backend: Backend, app_name: str, **extra: object) -> Settings:
    url = backend.url.render_as_string(hide_password=False)
    return Settings(  # type: ignore[arg-type]
        db_url=url,
        db_application_name=app_name,
        db_handle_signals=False,
        db_slow_query_threshold=100.0,
        **extra,
    )


@pytest.fixture
async def db(fault_backend: Backend, app_name: str, rows_table: str) -> AsyncIterator[Backend]:
    infra.reset_async_db()
    await infra.init_async_db(settings(fault_backend, app_name, db_pool_size=2, db_max_overflow=0))
    yield fault_backend
    await infra.close_async_db(timeout=5)


async def kill_all(backend: Backend, app_name: str) -> int:
    """Kill every server session of this test (PG: by application_name; MariaDB: by db)."""
    if backend.name == "postgresql":
        sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :app"
        return int(await admin_scalar(backend, sql, {"app": app_name}))  # type: ignore[call-overload]
    sql = "SELECT GROUP_CONCAT(id) FROM information_schema.processlist WHERE db = :db"
    ids = await admin_scalar(backend, sql, {"db": backend.url.database})
    for session_id in str(ids or "").split(","):
        if session_id:
            await admin_execute(backend, f"KILL CONNECTION {int(session_id)}")
    return len([i for i in str(ids or "").split(",") if i])


async def server_pid(session: object) -> int:
    pg = infra.get_engine().url.get_backend_name() == "postgresql"
    sql = "SELECT pg_backend_pid()" if pg else "SELECT connection_id()"
    return int((await session.execute(text(sql))).scalar_one())  # type: ignore[attr-defined]


async def select_one() -> int:
    async with infra.get_session() as session:
        return int((await session.execute(text("SELECT 1"))).scalar_one())


async def fill_pool() -> None:
    """Two concurrent sessions: both pooled connections get opened, then go idle."""
    ready, both_in = asyncio.Event(), asyncio.Event()
    inside: list[int] = []

    async def hold() -> None:
        async with infra.get_session() as session:
            await session.execute(text("SELECT 1"))
            inside.append(1)
            if len(inside) == 2:
                both_in.set()
            await ready.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(2)]
    await both_in.wait()
    ready.set()
    await asyncio.gather(*tasks)


def _checked_out_is(n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(infra.pool_status()["checked_out"] == n)

    return check


def _waiters_are(n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(infra.pool_status()["waiters"] == n)

    return check


async def test_all_backends_killed_while_idle(db: Backend, app_name: str) -> None:
    """Fault 2: pg_terminate_backend / KILL on every idle connection; pre-ping recovers."""
    await fill_pool()
    assert await kill_all(db, app_name) == 2
    assert await wait_no_connections(db, app_name, within=5.0) == 0  # the server ended them
    results = [await select_one() for _ in range(5)]
    assert results == [1] * 5  # zero failed requests
    assert_no_checked_out_connections(infra.get_engine())


async def test_backend_killed_mid_transaction(db: Backend, app_name: str, rows_table: str) -> None:
    """Fault 3: typed error, nothing committed, dead connection discarded, next transaction fine."""
    insert = text(f"INSERT INTO {rows_table} (batch, part) VALUES (:b, 1)")
    with pytest.raises(ConnectionLostError) as caught:
        async with infra.get_session() as session:
            await session.execute(insert, {"b": 1})
            pid = await server_pid(session)
            if db.name == "postgresql":
                await admin_scalar(db, "SELECT pg_terminate_backend(:pid)", {"pid": pid})
            else:
                await admin_execute(db, f"KILL CONNECTION {pid}")
            await session.execute(insert, {"b": 2})
            await session.commit()
    assert caught.value.__cause__ is not None  # the driver's error is kept
    assert_no_checked_out_connections(infra.get_engine())
    async with infra.get_session() as session:
        await session.execute(insert, {"b": 3})
        await session.commit()
    async with infra.get_session() as session:
        rows = (await session.execute(text(f"SELECT batch FROM {rows_table} ORDER BY batch"))).scalars().all()
    assert list(rows) == [3]


async def test_pool_exhausted_then_normal_service(fault_backend: Backend, app_name: str) -> None:
    """Fault 4: PoolTimeoutError after pool_timeout, counted in pool_status(), then service."""
    infra.reset_async_db()
    options = {"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.5}
    await infra.init_async_db(settings(fault_backend, app_name, **options))
    try:
        release = asyncio.Event()

        async def hold() -> None:
            async with infra.get_session() as session:
                await session.execute(text("SELECT 1"))
                await release.wait()

        holder = asyncio.create_task(hold())
        await wait_until(_checked_out_is(1), "the holder's checkout")
        started = time.monotonic()
        waiter = asyncio.create_task(select_one())
        await wait_until(_waiters_are(1), "a waiter in the pool")
        with pytest.raises(PoolTimeoutError):
            await waiter
        assert 0.4 <= time.monotonic() - started < 2.0
        status = infra.pool_status()
        assert status["timeouts"] == 1 and status["checked_out"] == 1 and status["waiters"] == 0
        release.set()
        await holder
        assert await select_one() == 1
        assert infra.pool_status()["timeouts"] == 1  # cumulative
    finally:
        await infra.close_async_db(timeout=5)


async def test_stuck_query_forced_at_shutdown(
    db: Backend, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault 5: close_async_db(timeout=2) with a 60 s query returns in ~2 s, says what it
    forced, and the server session is gone."""
    sleep_sql = "SELECT pg_sleep(60)" if db.name == "postgresql" else "SELECT SLEEP(60)"

    async def stuck() -> None:
        async with infra.get_session() as session:
            await session.execute(text(sleep_sql))

    task = asyncio.create_task(stuck(), name="stuck-report")
    await wait_until(lambda: statement_running(db, app_name, "sleep("), "the 60 s statement on the server")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pkg.database"):
        report = await infra.close_async_db(timeout=2)
    elapsed = time.monotonic() - started
    assert report is not None and report.forced == 1
    assert 1.9 <= elapsed < 4.0
    assert "forcing 1 connection(s)" in caplog.text and "stuck-report" in caplog.text
    assert any("stuck-report" in owner for owner in report.owners)
    with pytest.raises(DatabaseError):
        await task
    assert await wait_no_connections(db, app_name, within=1.5) == 0
