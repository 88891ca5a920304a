"""The shared fixture of the lookup-loop benches (leak tracking, metrics): server URLs and a
small ``(id, name)`` table filled with ``ROWS`` rows."""

from __future__ import annotations

import os

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine

ROWS = 1000


def bench_urls(sqlite_file: str) -> dict[str, str]:
    """The servers of the test suite (overridable the same way) and a SQLite file of the bench."""
    return {
        "postgresql": os.environ.get("KIT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
        "mysql": os.environ.get("KIT_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
        "sqlite": f"sqlite+aiosqlite:////tmp/{sqlite_file}",
    }


def lookup_table(name: str) -> Table:
    """An ``(id, name)`` table of its own metadata."""
    return Table(name, MetaData(), Column("id", Integer, primary_key=True), Column("name", String(40)))


async def prepare(engine: AsyncEngine, table: Table) -> None:
    """Recreate ``table`` and fill it with ``ROWS`` rows."""
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.drop_all)
        await conn.run_sync(table.metadata.create_all)
        await conn.execute(table.insert(), [{"id": i, "name": f"n{i}"} for i in range(1, ROWS + 1)])
