"""Single-row writes in their own transaction: as few statements as is atomic, same semantics.

On PostgreSQL (direct) create, update_by_id and delete_by_id of an own session are ONE
statement run outside a transaction (AUTOCOMMIT: no BEGIN / COMMIT round trips);
update_by_id is one ``UPDATE ... RETURNING`` with the version check and soft-delete filter in
its WHERE. Every backend keeps the ORM's semantics (no-op update, stale version, not found).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from internal.dao.user import UserDao
from pkg.database.errors import NotFoundError, StaleDataError
from tests.conftest import Backend


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, bool]]]:
    """(SQL verb, inside a transaction?) of each statement asyncpg runs on ``engine``.

    The adapter opens asyncpg's transaction (BEGIN) just before a statement unless the
    connection is in AUTOCOMMIT, so "inside" is "not in AUTOCOMMIT"."""
    seen: list[tuple[str, bool]] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        adapted = conn.connection.dbapi_connection
        seen.append((statement.split()[0].upper(), not adapted.autocommit))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


# AUTOCOMMIT single-statement writes exist on direct PostgreSQL only (never behind PgBouncer)
DIRECT_POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@DIRECT_POSTGRESQL
async def test_own_session_writes_are_one_statement_outside_a_transaction(
    backend: Backend, engine: AsyncEngine, users: UserDao
) -> None:
    with statements(engine) as seen:
        user = await users.create(username="a", email="a@x.io")
        updated = await users.update_by_id(user.id, username="b", version=1)
        assert await users.delete_by_id(user.id) is True
    assert seen == [("INSERT", False), ("UPDATE", False), ("DELETE", False)]
    assert updated.username == "b" and updated.version == 2 and updated.updated_at >= user.updated_at


@DIRECT_POSTGRESQL
async def test_joined_writes_stay_in_the_callers_transaction(
    backend: Backend, engine: AsyncEngine, users: UserDao
) -> None:
    user = await users.create(username="j", email="j@x.io")
    with statements(engine) as seen:
        async with users.transaction():
            await users.update_by_id(user.id, username="k")
            await users.delete_by_id(user.id)
    assert seen and all(in_transaction for _, in_transaction in seen)


async def test_update_with_unchanged_values_changes_nothing(users: UserDao) -> None:
    user = await users.create(username="same", email="s@x.io")
    again = await users.update_by_id(user.id, username="same", is_active=user.is_active)
    assert again.version == 1 and again.updated_at == user.updated_at
    assert (await users.get_or_raise(user.id)).version == 1


async def test_update_checks_version_and_soft_delete_in_one_statement(users: UserDao) -> None:
    user = await users.create(username="v", email="v@x.io", profile={"a": 1})
    moved = await users.update_by_id(user.id, profile={"a": 2}, version=1)
    assert moved.profile == {"a": 2} and moved.version == 2
    with pytest.raises(StaleDataError):
        await users.update_by_id(user.id, username="w", version=1)
    same = await users.update_by_id(user.id, profile={"a": 2}, version=2)  # unchanged, right version
    assert same.version == 2
    with pytest.raises(StaleDataError):
        await users.update_by_id(user.id, profile={"a": 2}, version=1)  # unchanged, stale version
    assert await users.soft_delete_by_id(user.id) is True
    with pytest.raises(NotFoundError):
        await users.update_by_id(user.id, username="gone")
    assert (await users.get_or_raise(user.id, include_deleted=True)).username == "v"
