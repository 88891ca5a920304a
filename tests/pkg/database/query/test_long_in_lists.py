"""IN / NOT IN lists of any length: past asyncpg's 32,767 and SQLite's 32,766 bind parameters."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from internal.dao.user import UserDao
from tests.conftest import Backend

N = 50_000
QUOTED = "o'b\"r\\i`e;n %_ "  # every quoting character the dialects care about


@pytest.fixture(autouse=True)
def standard_sqlite(backend: Backend, engine: AsyncEngine) -> None:
    """SQLite as most builds ship it: 32,766 parameters (Debian raises the cap to 250,000)."""
    if backend.name != "sqlite":
        return

    @event.listens_for(engine.sync_engine, "connect")
    def cap(dbapi_connection: Any, _record: Any) -> None:
        conn = dbapi_connection.driver_connection  # aiosqlite: run on its own thread
        await_only(conn._execute(conn._conn.setlimit, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766))


@pytest.fixture
async def rows(users: UserDao) -> list[int]:
    """30 users named ``<QUOTED><i>``; returns their ids."""
    await users.create_many({"username": f"{QUOTED}{i}", "email": f"u{i}@x.io"} for i in range(30))
    return sorted(u.id for u in await users.query().all())


async def test_long_int_in_list_in_every_terminal(users: UserDao, rows: list[int]) -> None:
    wanted = rows[:10] + list(range(10**6, 10**6 + N - 10))
    assert len(wanted) == N
    query = users.query().filter(id__in=wanted)
    assert sorted(u.id for u in await query.all()) == rows[:10]
    assert await query.count() == 10
    assert await query.exists() is True
    assert await users.query().filter(id__in=list(range(10**6, 10**6 + N))).exists() is False
    assert await users.count(id__not_in=wanted) == 20
    assert [u.id for u in await users.get_many(list(reversed(wanted)))] == list(reversed(rows[:10]))


async def test_long_string_in_list_with_quotes(users: UserDao, rows: list[int]) -> None:
    names = [f"{QUOTED}{i}" for i in range(N)]  # 30 of them exist
    assert await users.query().filter(username__in=names).count() == 30
    assert await users.query().filter(username__not_in=names[:N:2]).count() == 15
    assert await users.query().filter(username__not_in=names).exists() is False
    page = await users.query().filter(username__in=names[::-1]).order_by("id").page(1, 7)
    assert page.total == 30 and [u.id for u in page.items] == rows[:7]


async def test_long_in_list_in_or_group_and_writes(users: UserDao, rows: list[int]) -> None:
    wanted = rows[:5] + list(range(10**6, 10**6 + N))
    either = users.query().or_(id__in=wanted, username=f"{QUOTED}29")
    assert await either.count() == 6  # the OR of the long list keeps its own parentheses
    narrowed = users.query().filter(id__in=wanted, username__in=[f"{QUOTED}0", f"{QUOTED}29"])
    assert await narrowed.count() == 1
    assert await users.query().filter(id__in=wanted).update(is_active=False) == 5
    assert await users.count(is_active=False) == 5
    assert await users.query().filter(id__not_in=wanted).delete() == 25
