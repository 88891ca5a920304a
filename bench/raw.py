"""Raw-driver baselines (asyncpg / aiomysql / aiosqlite) behind one small interface.

SQL is written with ``?`` placeholders and rewritten per driver.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import aiomysql
import aiosqlite
import asyncpg
from sqlalchemy.engine import make_url


class Raw:
    """A pool of raw driver connections; every call checks one out, like a handler."""

    async def execute(self, sql: str, *args: Any) -> None: ...
    async def fetch(self, sql: str, *args: Any) -> list[Any]: ...
    async def fetchval(self, sql: str, *args: Any) -> Any: ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    async def close(self) -> None: ...


class PgRaw(Raw):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @staticmethod
    def sql(text: str) -> str:
        counter = iter(range(1, 10**6))
        return re.sub(r"\?", lambda _: f"${next(counter)}", text)

    async def execute(self, sql: str, *args: Any) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(self.sql(sql), *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(self.sql(sql), *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(self.sql(sql), *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(self.sql(sql), rows)

    async def close(self) -> None:
        await self.pool.close()


class MyRaw(Raw):
    def __init__(self, pool: aiomysql.Pool) -> None:
        self.pool = pool

    @staticmethod
    def sql(text: str) -> str:
        return text.replace("?", "%s")

    async def execute(self, sql: str, *args: Any) -> None:
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(self.sql(sql), args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(self.sql(sql), args)
            return list(await cur.fetchall())

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await conn.begin()
            await cur.executemany(self.sql(sql), rows)
            await conn.commit()

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


class LiteRaw(Raw):
    """aiosqlite has no pool: one connection, as a single-process app would keep."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self.conn.execute(sql, args)
        await self.conn.commit()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.conn.execute(sql, args) as cur:
            rows = list(await cur.fetchall())
        if self.conn.in_transaction:  # a write with RETURNING: sqlite3 opened a transaction
            await self.conn.commit()
        return rows

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)
        await self.conn.commit()

    async def close(self) -> None:
        await self.conn.close()


async def connect_raw(url: str, pool_size: int) -> Raw:
    """A raw pool for ``url`` (an SQLAlchemy URL), ``pool_size`` connections."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "postgresql":
        pool = await asyncpg.create_pool(
            host=u.host,
            port=u.port,
            user=u.username,
            password=u.password,
            database=u.database,
            min_size=pool_size,
            max_size=pool_size,
        )
        return PgRaw(pool)
    if backend == "mysql":
        mpool = await aiomysql.create_pool(
            host=u.host,
            port=u.port or 3306,
            user=u.username,
            password=u.password or "",
            db=u.database,
            minsize=pool_size,
            maxsize=pool_size,
            autocommit=True,
        )
        return MyRaw(mpool)
    return LiteRaw(await aiosqlite.connect(u.database or ":memory:"))
