"""Engine creation, JSON codec and application name on every backend."""

from __future__ import annotations

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database import json_dumps, mask_url, new_async_engine, new_async_session_maker
from tests.conftest import resolve_backend


async def test_engine_round_trip(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1 + 1"))).scalar_one() == 2


async def test_session_maker_does_not_expire_on_commit(engine: AsyncEngine) -> None:
    maker = new_async_session_maker(engine)
    assert maker.kw["expire_on_commit"] is False
    async with maker() as session:
        assert (await session.execute(text("SELECT 3"))).scalar_one() == 3


async def test_json_codec_is_orjson(engine: AsyncEngine, create_tables) -> None:
    metadata = MetaData()
    docs = Table("docs", metadata, Column("id", Integer, primary_key=True), Column("body", JSON))
    await create_tables(metadata)
    payload = {"a": [1, 2, {"b": "ünï"}], "n": None}
    async with engine.begin() as conn:
        await conn.execute(docs.insert(), [{"id": 1, "body": payload}])
    async with engine.connect() as conn:
        assert (await conn.execute(select(docs.c.body))).scalar_one() == payload
    assert engine.dialect._json_serializer is json_dumps  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite://"])
async def test_memory_sqlite_drops_pool_args(url: str) -> None:
    eng = new_async_engine(url, pool_size=3, max_overflow=1, pool_timeout=2)
    try:
        async with eng.connect() as conn:
            assert (await conn.execute(text("SELECT 7"))).scalar_one() == 7
    finally:
        await eng.dispose()


async def test_file_sqlite_keeps_pool_size(tmp_path) -> None:
    eng = new_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}", pool_size=3)
    try:
        assert eng.pool.size() == 3  # type: ignore[attr-defined]
    finally:
        await eng.dispose()


async def test_application_name_reaches_postgresql(server_backends, tmp_path) -> None:
    backend = resolve_backend("postgresql", server_backends, tmp_path)
    eng = backend.engine(application_name="kit-appname-test")
    try:
        async with eng.connect() as conn:
            value = (await conn.execute(text("SELECT current_setting('application_name')"))).scalar()
    finally:
        await eng.dispose()
    assert value == "kit-appname-test"


async def test_application_name_is_sent_by_mysql_driver(server_backends, tmp_path) -> None:
    # MariaDB here runs without performance_schema, so check what the driver was given
    # and that a connection made with it works.
    backend = resolve_backend("mysql", server_backends, tmp_path)
    eng = backend.engine(application_name="kit-appname-test")
    try:
        async with eng.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.driver_connection._connect_attrs["program_name"] == "kit-appname-test"
    finally:
        await eng.dispose()


def test_mask_url_hides_password() -> None:
    masked = mask_url("postgresql+asyncpg://u:s3cr%40t@h/db")
    assert "s3cr" not in masked and "***" in masked
