"""MySQL/MariaDB kit engines: driver autocommit, an explicit BEGIN for every transaction but
the session-less own read and lone INSERT/DELETE, no COMMIT/ROLLBACK when nothing is open.

Counted on the server (``SHOW SESSION STATUS`` of the one pooled connection's session), and
the promises kept: atomic transactions, stable REPEATABLE READ snapshots, a user's
AUTOCOMMIT, and a transaction opened by raw SQL still rolled back when the connection returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_

from internal.dao.order import OrderDao
from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import new_async_session_maker, transaction
from pkg.database.direct import read_on
from pkg.database.errors import DuplicateKeyError, StaleDataError
from tests.conftest import Backend

MYSQL = pytest.mark.parametrize("backend", ["mysql"], indirect=True)
_COUNTED = ("Questions", "Com_begin", "Com_commit", "Com_rollback")


async def _status(engine: AsyncEngine) -> dict[str, int]:
    rows = await read_on(engine, lambda conn: conn.execute(text("SHOW SESSION STATUS")).all())
    return {name: int(value) for name, value in rows if name in _COUNTED}


class _Counter:
    """Server-side counts of the pooled connection's session between two probes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.last: dict[str, int] = {}

    async def start(self) -> None:
        self.last = await _status(self.engine)

    async def delta(self) -> dict[str, int]:
        now = await _status(self.engine)
        diff = {k: now[k] - self.last[k] for k in _COUNTED}
        diff["Questions"] -= 1  # the probe's own SHOW
        self.last = now
        return diff


@pytest.fixture
async def one(backend: Backend) -> AsyncIterator[AsyncEngine]:
    """A kit engine with ONE pooled connection (so one server session), users table fresh."""
    engine = backend.engine(pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(User.metadata.drop_all)
            await conn.run_sync(User.metadata.create_all)
        yield engine
    finally:
        await engine.dispose()


def _columns(obj: object) -> dict[str, object]:
    return {prop.key: getattr(obj, prop.key) for prop in inspect(type(obj)).column_attrs}


def _none(questions: int, **com: int) -> dict[str, int]:
    return {"Questions": questions, "Com_begin": 0, "Com_commit": 0, "Com_rollback": 0, **com}


@MYSQL
async def test_own_calls_are_one_round_trip(one: AsyncEngine) -> None:
    users, counter = UserDao(session_provider=new_async_session_maker(one)), _Counter(one)
    await counter.start()
    user = await users.create(username="r", email="r@x.io")
    assert await counter.delta() == _none(1)  # INSERT ... RETURNING alone
    assert (await users.get(user.id)) is not None
    assert await counter.delta() == _none(1)  # SELECT alone
    assert await users.count(username="r") == 1
    assert await counter.delta() == _none(1)
    updated = await users.update_by_id(user.id, username="s")
    assert updated is not None and updated.username == "s" and updated.version == user.version + 1
    assert await counter.delta() == _none(2)  # SELECT, then UPDATE ... WHERE version = <read> alone
    assert _columns(updated) == _columns(await users.get_or_raise(user.id))  # what was stored
    await counter.start()
    assert (await users.update_by_id(user.id, username="s")).version == updated.version  # unchanged
    assert await counter.delta() == _none(1)  # nothing to write: the SELECT only
    assert await users.delete_by_id(user.id) is True
    assert await counter.delta() == _none(1)  # DELETE alone
    assert await users.get(user.id) is None


@MYSQL
async def test_own_builder_writes_are_one_statement(one: AsyncEngine) -> None:
    """An own builder UPDATE / soft delete / DELETE runs alone: no BEGIN, no COMMIT, no
    SELECT to keep a session in step (there is none)."""
    users, counter = UserDao(session_provider=new_async_session_maker(one)), _Counter(one)
    made = [await users.create(username=f"b{i}", email=f"b{i}@x.io") for i in range(3)]
    await counter.start()
    assert await users.query().filter(username__startswith="b").update(is_active=False) == 3
    assert await counter.delta() == _none(1)
    assert await users.query().filter(id=made[0].id).soft_delete() == 1
    assert await counter.delta() == _none(1)
    assert await users.query().filter(id=made[1].id).delete() == 1
    assert await counter.delta() == _none(1)
    left = await users.query().include_deleted().order_by("id").all()
    assert [(u.id, u.is_active, u.deleted_at is not None) for u in left] == [
        (made[0].id, False, True),
        (made[2].id, False, False),
    ]


@MYSQL
async def test_orm_session_and_transaction_are_real_transactions(one: AsyncEngine) -> None:
    maker = new_async_session_maker(one)
    users, counter = UserDao(session_provider=maker), _Counter(one)
    await counter.start()
    async with maker() as session:
        session.add(User(username="a", email="a@x.io"))
        await session.flush()
        assert (await session.execute(select(User.username))).scalars().all() == ["a"]
        await session.rollback()
    assert (await counter.delta())["Com_rollback"] == 1
    with pytest.raises(DuplicateKeyError):
        async with transaction(maker):
            await users.create(username="b", email="b@x.io")
            await users.create(username="b", email="b@x.io")  # fails: the first is undone too
    assert await users.count() == 0


@MYSQL
async def test_repeatable_read_snapshot_is_stable(one: AsyncEngine, backend: Backend) -> None:
    other = backend.engine()
    try:
        users, writer = (
            UserDao(session_provider=new_async_session_maker(one)),
            UserDao(session_provider=new_async_session_maker(other)),
        )
        await users.create(username="a", email="a@x.io")
        async with transaction(users.session_provider):
            assert await users.count() == 1
            await writer.create(username="b", email="b@x.io")  # committed by another connection
            assert await users.count() == 1  # same snapshot
        assert await users.count() == 2
    finally:
        await other.dispose()


@MYSQL
async def test_user_autocommit_means_no_transaction(one: AsyncEngine) -> None:
    users = UserDao(session_provider=new_async_session_maker(one))
    async with one.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(insert(User).values(username="a", email="a@x.io"))
        await conn.rollback()  # nothing to undo: the INSERT committed itself
    async with one.connect() as conn:  # reset at checkin: back in driver autocommit, RR level
        row = (await conn.execute(text("SELECT @@autocommit, @@tx_isolation"))).one()
        assert (row[0], row[1]) == (1, "REPEATABLE-READ")
        await conn.execute(insert(User).values(username="b", email="b@x.io"))
        await conn.rollback()  # a real transaction again: undone
    assert [u.username for u in await users.query().all()] == ["a"]


@MYSQL
async def test_a_transaction_opened_by_raw_sql_is_still_rolled_back(
    one: AsyncEngine, backend: Backend
) -> None:
    other = backend.engine()
    try:
        writer = UserDao(session_provider=new_async_session_maker(other))
        await writer.create(username="a", email="a@x.io")
        async with one.connect() as conn:
            raw = await conn.get_raw_connection()
            cursor = await raw.driver_connection.cursor()  # type: ignore[union-attr]
            await cursor.execute("START TRANSACTION")
            await cursor.execute("SELECT count(*) FROM users")  # a REPEATABLE READ view
            assert (await cursor.fetchone())[0] == 1
            await cursor.close()
        await writer.create(username="b", email="b@x.io")
        counted = await read_on(
            one, lambda conn: conn.execute(text("SELECT count(*) FROM users")).scalar_one()
        )
        assert counted == 2  # the same pooled connection: view released
    finally:
        await other.dispose()


@MYSQL
async def test_statements_after_an_implicit_commit_are_a_transaction_again(one: AsyncEngine) -> None:
    users = UserDao(session_provider=new_async_session_maker(one))
    with pytest.raises(RuntimeError, match="undo"):
        async with one.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS reset_probe (id INT PRIMARY KEY)"))  # COMMITs
            await conn.execute(insert(User).values(username="a", email="a@x.io"))
            raise RuntimeError("undo")
    try:
        assert await users.count() == 0  # the INSERT after the DDL was rolled back, as before
    finally:
        async with one.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS reset_probe"))


@MYSQL
async def test_update_by_id_without_a_transaction_keeps_the_version_guard(
    one: AsyncEngine, backend: Backend
) -> None:
    """Read-then-update: another writer between the read and the UPDATE is not lost, and the
    caller gets the row as stored (the version guard sends it to the session path)."""
    users = UserDao(session_provider=new_async_session_maker(one))
    user = await users.create(username="v", email="v@x.io")
    other = backend.engine(pool_size=1, max_overflow=0)
    raced: list[str] = []

    def between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not raced:  # right after our read
            raced.append(statement)
            await_(_bump(other, user.id))  # a real second connection, inside this call's greenlet

    event.listen(one.sync_engine, "after_cursor_execute", between)
    try:
        updated = await users.update_by_id(user.id, username="mine")
    finally:
        event.remove(one.sync_engine, "after_cursor_execute", between)
        await other.dispose()
    assert raced and updated.username == "mine" and updated.is_active is False  # theirs kept
    assert updated.version == user.version + 2
    assert _columns(updated) == _columns(await users.get_or_raise(user.id))
    with pytest.raises(StaleDataError):
        await users.update_by_id(user.id, username="again", version=user.version)


async def _bump(engine: AsyncEngine, pk: int) -> None:
    async with engine.begin() as conn:
        table = User.__table__
        await conn.execute(
            table.update().where(table.c.id == pk).values(is_active=False, version=table.c.version + 1)
        )


@MYSQL
async def test_own_session_reads_send_no_begin(one: AsyncEngine) -> None:
    """Reads that need the session path (eager loads) are READ-marked too: statements alone."""
    maker = new_async_session_maker(one)
    orders, counter = OrderDao(session_provider=maker), _Counter(one)
    users = UserDao(session_provider=maker)
    user = await users.create(username="o", email="o@x.io")
    made = await orders.create(user_id=user.id, total=5)
    await counter.start()
    found = await orders.get(made.id)
    assert found is not None and found.items == []
    assert await counter.delta() == _none(2)  # the order, its items: no BEGIN, no ROLLBACK
    async with maker() as session:  # a session of the caller's own still gets its transaction
        await session.execute(select(User.id))
        await session.commit()
    assert (await counter.delta())["Com_begin"] == 1


@MYSQL
async def test_update_by_id_on_a_plain_engine_commits(one: AsyncEngine, backend: Backend) -> None:
    """On an engine the kit did not build (autocommit off, no marks) the read-then-update
    runs in one transaction and is committed, not rolled back with the connection."""
    plain = create_async_engine(backend.url, pool_size=1, max_overflow=0)
    try:
        users = UserDao(session_provider=new_async_session_maker(plain))
        user = await users.create(username="p", email="p@x.io")
        updated = await users.update_by_id(user.id, username="q")
        assert updated.username == "q" and updated.version == user.version + 1
        kit_view = UserDao(session_provider=new_async_session_maker(one))
        assert (await kit_view.get_or_raise(user.id)).username == "q"  # another connection sees it
    finally:
        await plain.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_still_ends_a_transaction_that_is_open(engine: AsyncEngine, users: UserDao) -> None:
    """aiosqlite: COMMIT/ROLLBACK are skipped only where sqlite3 says none is open; an
    uncommitted write is rolled back at checkin, a committed one stays."""
    row = {
        "username": "a",
        "email": "a@x.io",
        "created_at": datetime.now(UTC),
        "updated_at": datetime.now(UTC),
    }
    async with engine.connect() as conn:
        await conn.execute(User.__table__.insert().values(**row))
        raw = await conn.get_raw_connection()
        assert raw.driver_connection.in_transaction  # type: ignore[union-attr]
    assert await users.count() == 0  # checkin rolled it back
    async with engine.connect() as conn:
        await conn.execute(User.__table__.insert().values(**row))
        await conn.commit()
    assert await users.count() == 1
