"""Fault-test fixtures: the backend matrix with a verbose PostgreSQL log for this run's
database (so even an idle socket dropped without a Terminate message is logged), a
unique application name per test, and a fresh two-column table."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import BACKENDS, Backend, resolve_backend


async def _admin(backend: Backend, sql: str) -> None:
    assert backend.admin_url is not None
    engine = create_async_engine(backend.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def verbose_pg_log(server_backends: dict[str, Backend | str]) -> Iterator[None]:
    """``log_min_messages=debug1`` for this run's PostgreSQL database only."""
    pg = server_backends.get("postgresql")
    if isinstance(pg, Backend):
        asyncio.run(_admin(pg, f'ALTER DATABASE "{pg.url.database}" SET log_min_messages = debug1'))
    yield


@pytest.fixture(params=BACKENDS)
def fault_backend(
    request: pytest.FixtureRequest,
    server_backends: dict[str, Backend | str],
    tmp_path: Path,
    verbose_pg_log: None,
) -> Backend:
    return resolve_backend(request.param, server_backends, tmp_path)


@pytest.fixture
def app_name() -> str:
    return f"kit-f-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def rows_table(fault_backend: Backend) -> AsyncIterator[str]:
    """A fresh ``(batch, part)`` table; its name."""
    name = f"rows_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(fault_backend.url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            columns = "batch INTEGER NOT NULL, part INTEGER NOT NULL, PRIMARY KEY (batch, part)"
            await conn.execute(text(f"CREATE TABLE {name} ({columns})"))
        yield name
    finally:
        await engine.dispose()
