"""The web app's answer to real, translated database errors (SQLite file, in process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from internal.web.errors import error_response
from pkg.database import new_async_engine, new_async_session_maker, transaction
from pkg.database.errors import ComputationError, DatabaseError, PoolTimeoutError


async def _kit_error(engine, statement: str | None = None) -> DatabaseError:
    try:
        async with transaction(new_async_session_maker(engine)) as session:
            await session.execute(text(statement or "SELECT 1"))
    except DatabaseError as exc:
        return exc
    raise AssertionError("no error")


async def test_pool_timeout_is_503_with_retry_after(tmp_path: Path) -> None:
    engine = new_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'web.db'}", pool_size=1, max_overflow=0, pool_timeout=0.1
    )
    try:
        async with engine.connect():  # the only connection is busy
            error = await _kit_error(engine)
        assert isinstance(error, PoolTimeoutError)
        response = error_response(error)
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("statement", ["SELECT abs(-9223372036854775807 - 1)", "SELEC 1"])
async def test_server_side_failures_are_500_not_422(tmp_path: Path, statement: str) -> None:
    engine = new_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}")
    try:
        error = await _kit_error(engine, statement)
        assert error_response(error).status_code == 500, type(error)
        assert isinstance(error, ComputationError) or "overflow" not in statement
    finally:
        await engine.dispose()
