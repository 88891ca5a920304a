"""Own DAO calls without an ORM session (``pkg/database/direct.py``, ``query/hydrate.py``,
``query/single.py``): the same detached instances, rows and errors, and the session path
wherever a session could differ (a caller's or ambient transaction, Session listeners, eager
loads, FOR UPDATE, non-plain mappers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import ForeignKey, Integer, String, event, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    column_property,
    deferred,
    mapped_column,
    reconstructor,
)

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import BaseDao, acting_as, direct, new_async_session_maker, transaction
from pkg.database.errors import (
    DatabaseError,
    DuplicateKeyError,
    InvalidValueError,
    StaleDataError,
    UnknownFieldError,
    UnloadedRelationError,
)
from pkg.database.query import lookups
from pkg.database.query.hydrate import Hydrator
from pkg.database.testing import assert_no_checked_out_connections, reset_kit_caches
from tests.conftest import Backend


@pytest.fixture
def orm_statements(engine: AsyncEngine) -> Iterator[list[bool]]:
    """Per statement the engine runs: True when a Session sent it (``Session.execute`` adds
    its result options, a flush the mapper's statement cache), False for a statement run on
    a bare connection."""
    seen: list[bool] = []

    def before_execute(conn: Any, clause: Any, multi: Any, params: Any, options: Any) -> None:
        seen.append("_result_disable_adapt_to_context" in options or "compiled_cache" in options)

    event.listen(engine.sync_engine, "before_execute", before_execute)
    yield seen
    event.remove(engine.sync_engine, "before_execute", before_execute)


def _columns(obj: Any) -> dict[str, Any]:
    """Every column attribute's value as the caller reads it."""
    return {prop.key: getattr(obj, prop.key) for prop in inspect(type(obj)).column_attrs}


async def _seed(users: UserDao, n: int = 5) -> list[User]:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    return [
        await users.create(
            username=f"u{i}", email=f"u{i}@x.io", profile={"n": i, "tags": ["a"]}, created_at=when
        )
        for i in range(n)
    ]


async def test_reads_send_no_session_and_match_the_session_path(
    users: UserDao, maker: async_sessionmaker[AsyncSession], orm_statements: list[bool]
) -> None:
    made = await _seed(users)
    orm_statements.clear()
    direct = await users.get(made[2].id)
    listed = await users.query().order_by("id").all()
    keyset = await users.query().order_by("id").keyset(size=2)
    assert orm_statements == [False, False, False]  # SELECTs on a bare connection
    page = await users.query().order_by("id").page(1, 2)
    counted, exists = await users.count(), await users.exists(username="u1")
    async with maker() as s:
        orm_statements.clear()
        via_session = await users.get(made[2].id, session=s)
        listed_session = await users.query().order_by("id").all(session=s)
    assert orm_statements == [True, True]  # joined: the session's ORM path (the check can fail)
    assert direct is not None and via_session is not None
    assert _columns(direct) == _columns(via_session)
    assert [_columns(u) for u in listed] == [_columns(u) for u in listed_session]
    assert direct.profile == {"n": 2, "tags": ["a"]} and direct.created_at.utcoffset() == timedelta(0)
    assert [u.id for u in page.items] == [made[0].id, made[1].id] and page.total == 5
    assert [u.id for u in keyset.items] == [made[0].id, made[1].id] and keyset.next_cursor
    assert (counted, exists) == (5, True)


async def test_instances_are_detached_loaded_and_usable_in_a_new_session(
    users: UserDao, maker: async_sessionmaker[AsyncSession]
) -> None:
    made = await _seed(users, 1)
    user = await users.get(made[0].id)
    assert user is not None
    state = inspect(user)
    assert state.detached and state.key == (User, (made[0].id,), None) and not state.unloaded - {"orders"}
    with pytest.raises(UnloadedRelationError, match=r"User\.orders was not loaded"):
        _ = user.orders
    async with maker() as s:  # a detached, loaded instance: add it, change it, commit
        s.add(user)
        user.username = "renamed"
        await s.commit()
    fresh = await users.get_or_raise(made[0].id)
    assert fresh.username == "renamed" and fresh.version == 2


async def test_soft_deleted_rows_stay_hidden(users: UserDao) -> None:
    made = await _seed(users, 2)
    assert await users.soft_delete_by_id(made[0].id)
    assert await users.get(made[0].id) is None
    assert (await users.get(made[0].id, include_deleted=True)) is not None
    assert [u.id for u in await users.query().all()] == [made[1].id]
    assert [u.id for u in await users.query().only_deleted().all()] == [made[0].id]


async def test_errors_are_the_same_typed_errors(
    users: UserDao, maker: async_sessionmaker[AsyncSession]
) -> None:
    await _seed(users, 1)
    bad = users.query().where(func.no_such_function(User.id) == 1)
    with pytest.raises(DatabaseError) as direct:
        await bad.all()
    async with maker() as s:
        with pytest.raises(DatabaseError) as joined:
            await bad.all(session=s)
    assert type(direct.value) is type(joined.value) and direct.value.__cause__ is not None


@pytest.mark.parametrize("hook", ["do_orm_execute", "after_begin"])
async def test_session_hooks_keep_the_session_path(users: UserDao, hook: str) -> None:
    made = await _seed(users, 2)
    seen: list[Any] = []

    def listener(*args: Any) -> None:  # e.g. a tenant SET in after_begin, a statement rewrite
        seen.append(args)

    event.listen(Session, hook, listener)
    try:
        assert (await users.get(made[0].id)) is not None
        assert len(await users.query().all()) == 2
    finally:
        event.remove(Session, hook, listener)
    assert len(seen) == 2  # both reads went through a session, where the hook runs
    seen.clear()
    await users.get(made[0].id)
    assert seen == []  # removed again: no session, no hook


async def test_reset_kit_caches_rebuilds_what_it_forgot(users: UserDao, orm_statements: list[bool]) -> None:
    made = await _seed(users, 1)
    await users.get(made[0].id)  # caches filled
    assert lookups._COLUMNS or lookups._TABLE_COLUMNS
    assert direct._listeners
    reset_kit_caches()
    assert not lookups._COLUMNS and not lookups._TABLE_COLUMNS and not direct._listeners
    seen: list[Any] = []

    def hook(state: Any) -> None:
        seen.append(state)

    event.listen(Session, "do_orm_execute", hook)
    try:
        assert (await users.query().filter(id=made[0].id).one()).id == made[0].id
    finally:
        event.remove(Session, "do_orm_execute", hook)
    assert len(seen) == 1 and direct._listeners  # gathered again, and the new hook was seen
    orm_statements.clear()
    assert (await users.get(made[0].id)) is not None
    assert orm_statements == [False] and lookups._TABLE_COLUMNS  # direct again, columns rebuilt


class _Base(DeclarativeBase):
    pass


class _Plain(_Base):
    __tablename__ = "direct_plain"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


class _Deferred(_Base):
    __tablename__ = "direct_deferred"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = deferred(mapped_column(String(20)))


class _Expression(_Base):
    __tablename__ = "direct_expression"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("direct_plain.id"))
    names = column_property(select(_Plain.name).where(_Plain.id == parent_id).scalar_subquery())


class _Reconstructed(_Base):
    __tablename__ = "direct_reconstructed"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)

    @reconstructor
    def _loaded(self) -> None:
        self.cache: dict[str, Any] = {}


class _Child(_Plain):
    __tablename__ = "direct_child"
    id: Mapped[int] = mapped_column(ForeignKey("direct_plain.id"), primary_key=True)


class _ServerMade(_Base):
    __tablename__ = "direct_server_made"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    tag: Mapped[str] = mapped_column(String(20), server_default="srv")
    note: Mapped[str | None] = mapped_column(String(20))


class _ServerMadeDao(BaseDao[_ServerMade]):
    model_cls = _ServerMade


async def test_create_brings_back_what_the_server_made(
    engine: AsyncEngine, orm_statements: list[bool]
) -> None:
    """The INSERT returns the keys and server defaults, as the flush fetches them; sent
    values stay as sent, and a column nobody set reads None, on both paths."""
    async with engine.begin() as conn:
        await conn.run_sync(_ServerMade.__table__.create)  # type: ignore[attr-defined]
    try:
        maker = new_async_session_maker(engine)
        dao = _ServerMadeDao(session_provider=maker)
        orm_statements.clear()
        direct = await dao.create(name="d")
        given = await dao.create(name="g", tag="mine")
        assert orm_statements == [False, False]
        async with maker() as s:
            joined = await dao.create(name="j", session=s)
            await s.commit()
        assert direct.tag == joined.tag == "srv" and given.tag == "mine"
        assert direct.note is None and joined.note is None
        assert len({direct.id, given.id, joined.id}) == 3 and None not in {direct.id, given.id}
        assert _columns(await dao.get_or_raise(direct.id)) == _columns(direct)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(_ServerMade.__table__.drop)  # type: ignore[attr-defined]


class _Coded(_Base):
    __tablename__ = "direct_coded"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)  # given, not generated
    name: Mapped[str] = mapped_column(String(20))


class _CodedDao(BaseDao[_Coded]):
    model_cls = _Coded


async def test_create_with_a_given_key_fetches_nothing_generated(
    engine: AsyncEngine, orm_statements: list[bool]
) -> None:
    """A key the caller gives (no autoincrement column) comes back as given, on a bare
    connection; a duplicate is the typed error."""
    async with engine.begin() as conn:
        await conn.run_sync(_Coded.__table__.create)  # type: ignore[attr-defined]
    try:
        dao = _CodedDao(session_provider=new_async_session_maker(engine))
        orm_statements.clear()
        made = await dao.create(code="k-1", name="n")
        assert orm_statements == [False] and made.code == "k-1" and inspect(made).key[1] == ("k-1",)
        assert _columns(await dao.get_or_raise("k-1")) == {"code": "k-1", "name": "n"}
        with pytest.raises(DuplicateKeyError):
            await dao.create(code="k-1", name="again")
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(_Coded.__table__.drop)  # type: ignore[attr-defined]


def test_only_plain_mappers_are_hydrated() -> None:
    assert Hydrator(_Plain).plain and Hydrator(User).plain and Hydrator(User).inserts
    assert not Hydrator(_Deferred).plain  # the ORM would leave the column unloaded
    assert not Hydrator(_Expression).plain  # a SQL expression, not a table column
    assert not Hydrator(_Reconstructed).plain  # @reconstructor runs on ORM loads only
    assert not Hydrator(_Child).plain  # joined inheritance: two tables


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"is_active": False, "profile": {"deep": {"list": [1, None, "x"]}}},
        {"profile": {}, "creator_id": None},
        {"created_at": datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-7)))},
    ],
)
async def test_writes_without_a_session_match_the_session_path(
    users: UserDao,
    maker: async_sessionmaker[AsyncSession],
    orm_statements: list[bool],
    values: dict[str, Any],
) -> None:
    orm_statements.clear()
    with acting_as(42):
        direct = await users.create(username="d", email="d@x.io", **values)
    assert orm_statements == [False]  # one INSERT ... RETURNING on a bare connection
    async with maker() as s:
        with acting_as(42):
            joined = await users.create(username="j", email="j@x.io", session=s, **values)
        await s.commit()
    assert orm_statements[1:] == [True]
    skip = {"id", "username", "email", "created_at", "updated_at"}
    mine, theirs = _columns(direct), _columns(joined)
    assert {k: v for k, v in mine.items() if k not in skip} == {
        k: v for k, v in theirs.items() if k not in skip
    }
    assert mine["version"] == 1 and mine["creator_id"] == 42  # None: the default, as the ORM does
    stored = await users.get_or_raise(direct.id)
    assert _columns(stored) == mine and inspect(direct).detached and not inspect(direct).modified
    if "created_at" in values:  # what was sent, as the flush leaves it; read back in UTC
        assert direct.created_at == values["created_at"] == joined.created_at
        assert direct.created_at.utcoffset() == joined.created_at.utcoffset() == timedelta(hours=-7)
        assert stored.created_at.utcoffset() == timedelta(0)


async def test_update_and_delete_without_a_session(users: UserDao, orm_statements: list[bool]) -> None:
    made = await _seed(users, 2)
    orm_statements.clear()
    updated = await users.update_by_id(made[0].id, username="renamed", version=1)
    gone = await users.delete_by_id(made[1].id)
    assert inspect(updated).detached and updated.username == "renamed" and updated.version == 2 and gone
    assert (await users.get(made[1].id)) is None and not await users.delete_by_id(made[1].id)
    assert True not in orm_statements  # MariaDB (no UPDATE RETURNING): UPDATE, SELECT, COMMIT
    with pytest.raises(StaleDataError):  # no row back: the session path tells stale from absent
        await users.update_by_id(made[0].id, username="again", version=1)
    assert (await users.get_or_raise(made[0].id)).username == "renamed"


async def test_update_without_a_session_keeps_the_bookkeeping(
    users: UserDao, maker: async_sessionmaker[AsyncSession]
) -> None:
    made = await _seed(users, 2)
    changes = {"username": "changed", "is_active": False}
    with acting_as(7):
        direct = await users.update_by_id(made[0].id, version=1, **changes)
        again = await users.update_by_id(made[0].id, **changes)  # unchanged: no write, no bump
        async with maker() as s:
            joined = await users.update_by_id(made[1].id, version=1, session=s, **changes)
            await s.commit()
    mine, theirs = _columns(direct), _columns(joined)
    assert mine["updater_id"] == theirs["updater_id"] == 7 and mine["version"] == theirs["version"] == 2
    assert mine["updated_at"] > made[0].updated_at and mine["created_at"] == made[0].created_at
    skip = {"id", "email", "profile", "created_at", "updated_at"}
    assert {k: v for k, v in mine.items() if k not in skip} == {
        k: v for k, v in theirs.items() if k not in skip
    }
    assert _columns(again) == mine and _columns(await users.get_or_raise(made[0].id)) == mine


async def test_builder_update_and_delete_without_a_session(
    users: UserDao, maker: async_sessionmaker[AsyncSession], orm_statements: list[bool]
) -> None:
    """An own builder UPDATE/DELETE is one statement on a bare connection, with the same
    bookkeeping; a caller's session or an ambient transaction keeps the session path."""
    made = await _seed(users, 4)
    orm_statements.clear()
    with acting_as(9):
        assert await users.query().filter(id__in=[made[0].id, made[1].id]).update(username="b") == 2
    assert await users.query().filter(id=made[2].id).soft_delete() == 1
    assert await users.query().filter(id=made[3].id).delete() == 1
    assert orm_statements == [False, False, False]
    bumped = await users.get_or_raise(made[0].id)
    assert (bumped.username, bumped.version, bumped.updater_id) == ("b", 2, 9)
    assert bumped.updated_at > made[0].updated_at
    assert await users.get(made[2].id) is None and await users.query().include_deleted().count() == 3
    async with maker() as s:
        mine = await users.get_or_raise(made[0].id, session=s)
        orm_statements.clear()
        assert await users.query().filter(id=made[0].id).update(username="c", session=s) == 1
        assert mine.username == "c"  # the caller's session is kept in step
        await s.rollback()
    assert orm_statements and False not in orm_statements
    orm_statements.clear()
    with pytest.raises(RuntimeError):
        async with transaction(users.session_provider):
            assert await users.query().filter(id=made[1].id).update(username="gone") == 1
            raise RuntimeError("roll back")
    assert orm_statements and False not in orm_statements
    assert (await users.get_or_raise(made[1].id)).username == "b"


@pytest.mark.parametrize(
    "lookups",
    [
        {},
        {"is_active": True},
        {"id__between": (2, 4), "is_active": True},
        {"deleted_at": None, "username__ne": "u1"},
        {"deleted_at__isnull": False},
        {"email__ne": None, "id__gte": 3, "id__lt": 5},
        {"username__in": ["u1", "u2"], "id__gt": 0},  # not templated: the builder's path
    ],
)
async def test_count_and_exists_templates_match_the_builder(
    users: UserDao, maker: async_sessionmaker[AsyncSession], lookups: dict[str, Any]
) -> None:
    made = await _seed(users, 5)
    await users.update_by_id(made[3].id, is_active=False)
    for _ in range(2):  # the second call reuses the prebuilt statement with new values
        async with maker() as s:
            expected = await users.query().filter(**lookups).count(session=s)
        assert await users.count(**lookups) == expected
        assert await users.exists(**lookups) is (expected > 0)
        lookups = {k: (v[0] + 1, v[1]) if k == "id__between" else v for k, v in lookups.items()}


async def test_count_templates_check_values_like_the_builder(users: UserDao) -> None:
    with pytest.raises(InvalidValueError):
        await users.count(username="a\x00b")
    with pytest.raises(UnknownFieldError):
        await users.count(nope__gt=1)
    with pytest.raises(TypeError):
        await users.count(id__between=5)
    assert await users.count(orders__total__gt=1) == 0  # a relation lookup: the builder's EXISTS


@pytest.fixture
def executed(engine: AsyncEngine) -> Iterator[list[Any]]:
    """Each statement object the engine runs, in order."""
    seen: list[Any] = []

    def before_execute(conn: Any, clause: Any, *args: Any) -> None:
        seen.append(clause)

    event.listen(engine.sync_engine, "before_execute", before_execute)
    yield seen
    event.remove(engine.sync_engine, "before_execute", before_execute)


async def test_same_shape_reuses_one_statement_with_new_values(users: UserDao, executed: list[Any]) -> None:
    made = await _seed(users, 6)
    ids = [u.id for u in made]
    executed.clear()
    first = await users.query().filter(id__in=ids[:2], is_active=True).order_by("id").all()
    second = await users.query().filter(id__in=ids[2:5], is_active=True).order_by("id").all()
    assert [u.id for u in first] == ids[:2] and [u.id for u in second] == ids[2:5]
    assert executed[0] is executed[1]  # one statement object: built and cache-keyed once
    page = await users.query().order_by("id").keyset(size=2)
    after = await users.query().order_by("id").keyset(size=2, after=page.next_cursor)
    again = await users.query().order_by("id").keyset(size=2, after=after.next_cursor)
    assert [u.id for u in after.items] == ids[2:4] and [u.id for u in again.items] == ids[4:6]
    assert executed[3] is executed[4]  # the keyset pages after a cursor share one statement too
    executed.clear()
    await users.query().where(User.id > ids[0]).all()
    await users.query().where(User.id > ids[1]).all()
    assert executed[0] is not executed[1]  # an arbitrary where(): no shape, a new statement


async def test_own_builder_writes_reuse_one_statement_per_shape(users: UserDao, executed: list[Any]) -> None:
    """Own builder UPDATE/DELETE of one shape share one statement object; values are bound
    with their column's type (JSON, aware datetimes); a SQL value gets a statement of its own."""
    made = await _seed(users, 5)
    ids, when = [u.id for u in made], datetime(2031, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    executed.clear()
    assert await users.query().filter(id=ids[0]).update(profile={"k": [1, "x"]}, created_at=when) == 1
    assert await users.query().filter(id=ids[1]).update(profile={"k": None}, created_at=when) == 1
    assert await users.query().filter(id=ids[2]).delete() == 1
    assert await users.query().filter(id=ids[3]).delete() == 1
    assert executed[0] is executed[1] and executed[2] is executed[3]
    first, second = await users.get_or_raise(ids[0]), await users.get_or_raise(ids[1])
    assert (first.profile, second.profile) == ({"k": [1, "x"]}, {"k": None})
    assert first.created_at == when and first.created_at.utcoffset() == timedelta(0)
    assert (first.version, second.version) == (2, 2)  # the bookkeeping bump stays SQL
    executed.clear()
    assert await users.query().filter(id=ids[4]).update(username=func.upper(User.email)) == 1
    assert await users.query().filter(id=ids[4]).update(username=func.lower(User.username)) == 1
    assert executed[0] is not executed[1]  # a SQL value: no shape, a new statement
    assert (await users.get_or_raise(ids[4])).username == made[4].email.lower()
    assert await users.query().filter(id=ids[4]).update(version=7) == 1  # a given version is bound
    assert (await users.get_or_raise(ids[4])).version == 7
    with pytest.raises(UnknownFieldError):
        await users.query().filter(id=ids[4]).update(nope=1)


async def test_a_column_as_lookup_value_stays_sql(users: UserDao) -> None:
    await _seed(users, 3)
    assert await users.count(created_at=User.created_at) == 3  # compared to itself, not bound
    assert await users.count(updated_at__lt=User.created_at) == 0  # seeded: created in 2024


async def test_direct_calls_hand_back_a_transactional_connection(
    backend: Backend, users: UserDao, engine: AsyncEngine
) -> None:
    """Whatever switch the bare read/write used (AUTOCOMMIT where it saves BEGIN/COMMIT),
    the pooled connection comes back transactional: a rolled-back write is gone."""
    one = backend.engine(pool_size=1, max_overflow=0)  # every call below: the same connection
    try:
        dao = UserDao(session_provider=new_async_session_maker(one))
        made = await dao.create(username="a", email="a@x.io")
        assert (await dao.get(made.id)) is not None and await dao.count() == 1
        await dao.delete_by_id(made.id)
        async with one.connect() as conn:
            await conn.execute(User.__table__.insert().values(username="b", email="b@x.io"))
            await conn.rollback()
        assert await dao.count() == 0  # the INSERT was in a transaction, rolled back
    finally:
        await one.dispose()


_SLEEP = {  # a statement that runs long, and how the server shows it running
    "postgresql": (
        "pg_sleep(30) IS NOT NULL",
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%'"
        " AND state = 'active' AND pid <> pg_backend_pid()",
    ),
    "mysql": (
        "SLEEP(30) = 0",
        "SELECT count(*) FROM information_schema.processlist"
        " WHERE info LIKE '%SLEEP(30)%' AND id <> CONNECTION_ID()",
    ),
}


@pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
async def test_a_cancelled_direct_read_returns_its_connection(
    backend: Backend, users: UserDao, engine: AsyncEngine
) -> None:
    """Cancelled while the server runs its statement, a session-less read still hands its
    connection back (closed inside its one greenlet hop), and the pool keeps serving."""
    await _seed(users, 2)
    sleep, running = _SLEEP[backend.name]
    task = asyncio.create_task(users.query().where(text(sleep)).all())
    watcher = backend.engine(pool_size=1)
    try:
        for _ in range(500):  # poll the server until the statement is running there
            async with watcher.connect() as conn:
                if (await conn.execute(text(running))).scalar_one():
                    break
        else:
            pytest.fail("the sleeping statement never showed up on the server")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        if backend.name == "mysql":  # the server finishes a SLEEP of a closed connection itself
            async with watcher.connect() as conn:
                ids = (await conn.execute(text(_SLEEP["mysql"][1].replace("count(*)", "id")))).scalars()
                for pid in list(ids):
                    await conn.execute(text(f"KILL QUERY {int(pid)}"))
        await watcher.dispose()
    assert_no_checked_out_connections(engine)
    assert await users.count() == 2  # the pool still serves
