"""The kit behind a real PgBouncer in transaction pooling mode (``scripts/services.sh``
starts it on 127.0.0.1:6432 with ``default_pool_size=3``): the issue's mixed load without
failures (and why it fails without ``pgbouncer="transaction"``), many client processes on
three server connections, prepared statements that do not pile up, forced shutdown that
leaves other clients alone, and the settings PgBouncer cannot honour refused up front."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from pkg.database import new_async_engine, new_async_session_maker
from pkg.database.errors import ConfigurationError, SessionFeatureError
from pkg.database.lifecycle import close_engine
from pkg.database.transactions import CallSession
from tests.conftest import PGBOUNCER, Backend, resolve_backend
from tests.pkg.database.pgbouncer_load import describe, run_load, seed

ROOT = Path(__file__).resolve().parents[3]
_ADMIN = ("-U", "postgres", "-d", "pgbouncer", "-c")


@pytest.fixture
def pooled(server_backends: dict[str, Backend | str], tmp_path: Path) -> Backend:
    """This run's PostgreSQL database through PgBouncer."""
    return resolve_backend(PGBOUNCER, server_backends, tmp_path)


@pytest.fixture
async def direct(pooled: Backend) -> AsyncIterator[AsyncEngine]:
    """A plain engine on the server's admin database (5432), bypassing the pooler."""
    assert pooled.admin_url is not None
    engine = create_async_engine(pooled.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    yield engine
    await engine.dispose()


def admin_console(pooled: Backend, command: str) -> list[dict[str, str]]:
    """Rows of a PgBouncer admin console command (simple query protocol only: psql)."""
    url = pooled.url
    out = subprocess.run(
        ["psql", "-X", "-A", "-F", "\t", "-h", str(url.host), "-p", str(url.port), *_ADMIN, command],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.splitlines()
    header = out[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in out[1:-1]]


def pool_row(pooled: Backend) -> dict[str, int]:
    """``SHOW POOLS`` numbers of this run's database: clients and server connections."""
    for row in admin_console(pooled, "SHOW POOLS"):
        if row["database"] == pooled.url.database:
            clients = int(row["cl_active"]) + int(row["cl_waiting"])
            servers = sum(int(row[k]) for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"))
            return {"clients": clients, "servers": servers}
    return {"clients": 0, "servers": 0}


def configured_pool_size(pooled: Backend) -> int:
    rows = admin_console(pooled, "SHOW CONFIG")
    return int(next(r["value"] for r in rows if r["key"] == "default_pool_size"))


def drop_server_connections(pooled: Backend) -> None:
    """Close every client and server connection of this run's database in PgBouncer."""
    admin_console(pooled, f"KILL {pooled.url.database}")
    admin_console(pooled, f"RESUME {pooled.url.database}")


async def server_pids(direct: AsyncEngine, database: str) -> dict[int, str]:
    """Server backends of ``database`` (pid -> state), seen directly on PostgreSQL."""
    async with direct.connect() as conn:
        rows = await conn.execute(
            text("SELECT pid, coalesce(state, '') FROM pg_stat_activity WHERE datname = :db"),
            {"db": database},
        )
        return {int(pid): state for pid, state in rows}


@pytest.fixture
async def pooled_engine(pooled: Backend) -> AsyncIterator[AsyncEngine]:
    engine = pooled.engine(pool_size=10, max_overflow=0)
    yield engine
    await engine.dispose()


@pytest.mark.parametrize("calls", [20, pytest.param(200, marks=pytest.mark.slow)])
async def test_mixed_load_of_40_tasks_through_pgbouncer_has_no_failures(
    pooled_engine: AsyncEngine, calls: int
) -> None:
    """The issue's load: 40 tasks x 200 mixed DAO calls on 10 connections (slow: ~30 s on 2
    cores; 40 x 20 in the default run)."""
    ids = await seed(pooled_engine, 60)
    failures = await run_load(pooled_engine, ids, tasks=40, calls=calls)
    assert failures == [], f"{len(failures)} of {40 * calls} calls failed: {describe(failures)}"
    assert pooled_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_without_the_setting_the_same_load_fails_through_pgbouncer(pooled: Backend) -> None:
    """Why the setting exists: named, cached statements and AUTOCOMMIT reads break."""
    plain = new_async_engine(pooled.url, pool_size=10, max_overflow=0, slow_query_threshold=None)
    try:
        ids = await seed(plain, 60)
        failures = await run_load(plain, ids, tasks=40, calls=25)
    finally:
        await plain.dispose()
        drop_server_connections(pooled)  # the statements it left behind go with them
    assert failures, "expected PgBouncer transaction pooling to break the default settings"
    missing = [e for e in failures if getattr(e, "sqlstate", None) == "26000"]  # no such statement
    assert missing, describe(failures)


async def test_four_processes_of_pool_10_are_served_by_three_server_connections(
    pooled: Backend, pooled_engine: AsyncEngine, direct: AsyncEngine
) -> None:
    ids = await seed(pooled_engine, 60)
    assert ids
    await pooled_engine.dispose()
    limit = configured_pool_size(pooled)
    url = pooled.url.render_as_string(hide_password=False)
    args = ["-m", "tests.pkg.database.pgbouncer_load", url, "10", "10", "15"]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, *args, str(10 * n), cwd=ROOT, stdin=PIPE, stdout=PIPE
        )
        for n in range(4)
    ]
    try:
        for proc in procs:  # each process holds 10 client connections open to PgBouncer
            assert proc.stdout is not None
            assert (await proc.stdout.readline()).strip() == b"ready"
        assert pool_row(pooled)["clients"] >= 40
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        most_servers = 0
        while any(p.returncode is None for p in procs):  # sample the server while they run
            most_servers = max(most_servers, len(await server_pids(direct, str(pooled.url.database))))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 0.02)
        failed = [int((await p.communicate())[0].strip()) for p in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert failed == [0, 0, 0, 0]
    assert 0 < most_servers <= limit == 3
    assert pool_row(pooled)["servers"] <= limit


@pytest.mark.parametrize("calls", [100, pytest.param(1000, marks=pytest.mark.slow)])
async def test_server_prepared_statements_stay_bounded_after_many_calls(
    pooled: Backend, pooled_engine: AsyncEngine, calls: int
) -> None:
    """10 tasks x ``calls`` mixed calls (slow: the issue's 10,000), then not one prepared
    statement is left on any of the pool's server connections."""
    ids = await seed(pooled_engine, 20)
    drop_server_connections(pooled)  # start from fresh server connections
    failures = await run_load(pooled_engine, ids, tasks=10, calls=calls)
    assert failures == [], describe(failures)
    limit = configured_pool_size(pooled)
    conns = [await pooled_engine.connect() for _ in range(limit)]  # one transaction per server
    try:
        seen = {}
        for conn in conns:
            row = (
                await conn.execute(text("SELECT pg_backend_pid(), count(*) FROM pg_prepared_statements"))
            ).one()
            seen[row[0]] = row[1]
    finally:
        for conn in conns:
            await conn.close()
    assert len(seen) == limit  # every server connection looked at
    assert all(count == 0 for count in seen.values()), seen


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine in this process sends during the test."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield sent
    event.remove(Engine, "before_cursor_execute", record)


async def test_forced_close_of_one_client_leaves_another_clients_transaction_intact(
    pooled: Backend, direct: AsyncEngine, statements: list[str]
) -> None:
    a, b = pooled.engine(pool_size=1), pooled.engine(pool_size=1)
    try:
        async with b.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS kept (n int)"))
            await conn.execute(text("DELETE FROM kept"))
        stuck = await a.connect()
        a_pid = (await stuck.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with b.connect() as other:
            await other.execute(text("INSERT INTO kept VALUES (1)"))
            b_pid = (await other.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert a_pid != b_pid  # two server connections, each inside a transaction
            report = await close_engine(a, timeout=0.2)
            assert report.forced == 1
            await other.execute(text("INSERT INTO kept VALUES (2)"))
            await other.commit()
        async with b.connect() as check:
            assert (await check.execute(text("SELECT count(*) FROM kept"))).scalar_one() == 2
        assert not any("pg_terminate_backend" in s for s in statements)
        for _ in range(250):  # PgBouncer drops the server connection A was in a transaction on
            if (await server_pids(direct, str(pooled.url.database))).get(a_pid) != "idle in transaction":
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the forced client's transaction is still open on the server")
        await stuck.invalidate()  # its socket is gone: give the pool slot back
        await stuck.close()
    finally:
        await a.dispose()
        await b.dispose()


async def test_own_session_reads_run_inside_a_transaction_behind_pgbouncer(
    pooled_engine: AsyncEngine,
) -> None:
    async with CallSession(new_async_session_maker(pooled_engine)).read() as session:
        conn = await session.connection()
        assert conn.sync_connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
        assert conn.in_transaction()


async def test_session_only_statements_raise_a_typed_error(pooled_engine: AsyncEngine) -> None:
    for sql in (
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_lock(1)",
        "SET search_path TO public",
        "SET SESSION statement_timeout = 1000",
        "RESET ALL",
        "LISTEN kit",
        "SELECT set_config('search_path', 'public', false)",
    ):
        async with pooled_engine.connect() as conn:
            with pytest.raises(SessionFeatureError):
                await conn.execute(text(sql))
    async with pooled_engine.begin() as conn:  # the transaction-scoped forms work
        await conn.execute(text("SELECT pg_advisory_xact_lock(1)"))
        await conn.execute(text("SET LOCAL statement_timeout = 1000"))
        assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "1s"
    async with pooled_engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(SessionFeatureError, match="AUTOCOMMIT"):
            await auto.execute(text("SELECT 1"))


async def test_application_name_is_passed_through_pgbouncer(pooled: Backend) -> None:
    engine = pooled.engine(application_name="kit-behind-pgbouncer")
    try:
        async with engine.connect() as conn:
            name = (await conn.execute(text("SELECT current_setting('application_name')"))).scalar_one()
        assert name == "kit-behind-pgbouncer"
    finally:
        await engine.dispose()


async def test_startup_settings_pgbouncer_refuses_fail_at_engine_creation(pooled: Backend) -> None:
    settings = {"server_settings": {"search_path": "public"}}
    with pytest.raises(ConfigurationError, match="ignore_startup_parameters") as info:
        pooled.engine(connect_args=settings)
    assert "search_path" in str(info.value)
    plain = create_async_engine(pooled.url, poolclass=NullPool, connect_args=settings)
    try:  # why: the real PgBouncer refuses the login
        with pytest.raises(Exception, match="unsupported startup parameter"):
            async with plain.connect():
                pass
    finally:
        await plain.dispose()


def test_pgbouncer_option_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="one of transaction"):
        new_async_engine("postgresql+asyncpg://u@h/db", pgbouncer="session")
    with pytest.raises(ConfigurationError, match="postgresql\\+asyncpg"):
        new_async_engine("sqlite+aiosqlite:///:memory:", pgbouncer="transaction")
    with pytest.raises(ConfigurationError, match="AUTOCOMMIT"):
        new_async_engine("postgresql+asyncpg://u@h/db", pgbouncer="transaction", isolation_level="AUTOCOMMIT")
    with pytest.raises(ConfigurationError, match="statement_cache_size"):
        new_async_engine(
            make_url("postgresql+asyncpg://u@h/db"),
            pgbouncer="transaction",
            connect_args={"statement_cache_size": 50},
        )
