"""Driver errors arrive as the kit's typed errors, classified by SQLSTATE / error number:
a bad value is InvalidValueError (without the value), a failed computation ComputationError,
a busy connection a misuse, anything else DriverError; never a bare DBAPIError."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from internal.web.errors import error_response
from pkg.database.errors import (
    ComputationError,
    ConcurrentSessionUseError,
    ConnectionLostError,
    DatabaseError,
    DriverError,
    InvalidValueError,
    QueryError,
    TransientDatabaseError,
    translate_error,
)
from tests.conftest import resolve_backend

SECRET = "s3cr3t-value-too-long"


async def test_too_long_value_is_invalid_value_on_servers(server_backend) -> None:
    metadata = MetaData()
    t = Table("short_values", metadata, Column("id", Integer, primary_key=True), Column("code", String(5)))
    engine: AsyncEngine = server_backend.engine()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        with pytest.raises(InvalidValueError) as info:
            try:
                async with engine.begin() as conn:
                    await conn.execute(t.insert(), {"id": 1, "code": SECRET})
            except Exception as exc:
                raise translate_error(exc) from exc
        assert SECRET not in str(info.value)
        assert info.value.__cause__ is not None
        async with engine.connect() as conn:  # nothing half-written
            assert (await conn.execute(text("SELECT COUNT(*) FROM short_values"))).scalar_one() == 0
    finally:
        await engine.dispose()


# -- classified by what happened (SQLSTATE / error number), not by class name ---------
# A failing computation on each backend: (statement, expected SQLSTATE, expected errno).
# MySQL/MariaDB only raise division by zero on a write (strict mode, the server default);
# SQLite returns NULL for 1/0, its computation error is an integer overflow.
_COMPUTATIONS = {
    "postgresql": ("SELECT 1 / 0", "22012", None),
    "mysql": ("INSERT INTO computed (n) SELECT 1 / 0", "22012", 1365),
    "sqlite": ("SELECT abs(-9223372036854775807 - 1)", None, 1),
}


async def _translated(engine: AsyncEngine, statement: str) -> BaseException:
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    except Exception as exc:
        return translate_error(exc)
    raise AssertionError(f"{statement!r} did not fail")


async def test_division_by_zero_is_a_computation_error_not_a_bad_value(backend, engine) -> None:
    statement, sqlstate, errno = _COMPUTATIONS[backend.name]
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE computed (n INTEGER)"))
    error = await _translated(engine, statement)
    assert isinstance(error, ComputationError) and not isinstance(error, QueryError)
    assert not isinstance(error, InvalidValueError | TransientDatabaseError)
    assert (error.sqlstate, error.errno) == (sqlstate, errno)
    assert error_response(error).status_code == 500  # the web app: not 422


async def test_a_bad_client_value_stays_invalid_value(server_backend) -> None:
    engine: AsyncEngine = server_backend.engine()
    try:
        cast = "SELECT CAST('x' AS INTEGER)" if server_backend.name == "postgresql" else None
        if cast is None:  # MariaDB casts silently; a too-large value in strict mode is its 22003
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE IF NOT EXISTS small_int (n SMALLINT)"))
            cast = "INSERT INTO small_int (n) VALUES (99999999)"
        error = await _translated(engine, cast)
        assert isinstance(error, InvalidValueError), error
        assert error_response(error).status_code == 422
    finally:
        await engine.dispose()


@pytest.mark.parametrize("statement", ["SELEC 1", "SELECT * FROM no_such_table"])
async def test_unknown_driver_errors_are_kit_errors_with_cause(engine, statement: str) -> None:
    error = await _translated(engine, statement)
    assert isinstance(error, DriverError), repr(error)
    assert isinstance(error, DatabaseError) and not isinstance(error, sa_exc.DBAPIError)
    assert error.sqlstate is not None or error.errno is not None


async def test_interface_error_of_a_busy_connection_is_misuse_not_a_lost_connection(pg_engine) -> None:
    """asyncpg's 'another operation is in progress' InterfaceError: a second task used the
    connection while a statement was running. Not a lost connection: never retried, not 503."""
    async with pg_engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        sleeper = asyncio.create_task(conn.execute(text("SELECT pg_sleep(1)")))
        await _wait_active(pg_engine, pid)
        with pytest.raises(sa_exc.InterfaceError) as info:
            await conn.rollback()  # a second operation on the busy connection
        await sleeper
    error = translate_error(info.value)
    assert isinstance(error, ConcurrentSessionUseError), repr(error)
    assert not isinstance(error, TransientDatabaseError | ConnectionError)
    assert "two tasks" in str(error)


async def test_a_killed_backend_is_still_a_lost_connection(server_backend) -> None:
    engine: AsyncEngine = server_backend.engine()
    pg = server_backend.name == "postgresql"
    try:
        async with engine.connect() as conn:
            pid = (
                await conn.execute(text("SELECT pg_backend_pid()" if pg else "SELECT CONNECTION_ID()"))
            ).scalar()
            async with engine.connect() as other:
                await other.execute(text(f"SELECT pg_terminate_backend({pid})" if pg else f"KILL {pid}"))
            with pytest.raises(sa_exc.DBAPIError) as info:
                await conn.execute(text("SELECT 1"))
        assert isinstance(translate_error(info.value), ConnectionLostError)
    finally:
        await engine.dispose()


async def _wait_active(engine: AsyncEngine, pid: int) -> None:
    """Poll pg_stat_activity until backend ``pid`` runs its statement."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND state = 'active'")
    async with engine.connect() as conn:
        while not (await conn.execute(query, {"pid": pid})).scalar_one():
            pass


@pytest.fixture
async def pg_engine(server_backends, tmp_path) -> AsyncEngine:
    engine = resolve_backend("postgresql", server_backends, tmp_path).engine()
    try:
        yield engine
    finally:
        await engine.dispose()
