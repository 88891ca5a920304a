"""Driver errors about bad values arrive as InvalidValueError, without the value."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.errors import InvalidValueError, translate_error

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
