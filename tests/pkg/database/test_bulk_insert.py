"""``create_many``'s direct path (``pkg/database/query/bulk.py``) stores exactly what the
ORM path stores: aware instants as UTC, naive ones as UTC, JSON documents, the Python-side
defaults; it joins the caller's transaction, is atomic, and its statements still fire the
engine's events."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import JSON, Boolean, DateTime, String, cast, event, func, insert, select
from sqlalchemy.dialects import oracle
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import acting_as, new_async_session_maker
from pkg.database.errors import DuplicateKeyError
from pkg.database.query import bulk
from pkg.database.query.upsert import fill_defaults
from pkg.database.types import JSONType, UTCDateTime

T = User.__table__
PLUS8 = timezone(timedelta(hours=8))
AT = datetime(2024, 3, 1, 7, 8, 9, 123456, tzinfo=PLUS8)  # 2024-02-29 23:08:09.123456 UTC
NAIVE = datetime(2023, 12, 31, 23, 59, 59)  # taken as UTC
PROFILE = {"lang": "fr", "tags": ["é", "ü"], "n": {"x": 1.5, "y": None, "z": True}}
STORED = [T.c.username, T.c.is_active, T.c.version, T.c.creator_id, T.c.updater_id, T.c.deleted_at]
TEXT = [T.c.created_at, T.c.updated_at, T.c.profile]  # compared as the server's text


def rows(prefix: str) -> list[dict[str, Any]]:
    """Mixed keys: explicit instants and JSON, and rows leaving columns to their defaults."""
    out: list[dict[str, Any]] = []
    for i in range(30):
        row: dict[str, Any] = {"username": f"{prefix}{i}", "email": f"{prefix}{i}@x.io"}
        row["created_at"] = AT + timedelta(minutes=i)
        row["updated_at"] = NAIVE if i % 2 else AT
        if i % 5 == 0:  # one object in both columns: converted once, stored twice
            row["updated_at"] = row["created_at"] = (NAIVE if i % 2 else AT) + timedelta(hours=i)
        if i % 3:
            row["profile"] = {**PROFILE, "i": i}
            row["is_active"] = i % 2 == 0
        out.append(row)
    return out


async def stored(maker: async_sessionmaker[AsyncSession], prefix: str) -> list[tuple[Any, ...]]:
    columns = [*STORED, *(cast(c, String) for c in TEXT)]
    query = select(*columns).where(T.c.username.startswith(prefix)).order_by(T.c.id)
    async with maker() as session:
        found = (await session.execute(query)).all()
    return [(r[0][len(prefix) :], *r[1:]) for r in found]


async def test_direct_path_stores_what_the_orm_path_stores(users: UserDao, maker, engine) -> None:
    with acting_as(7):
        assert await users.create_many(rows("f")) == 30
        orm_rows = [{**r} for r in rows("o")]
        async with maker() as session:  # the ORM path create_many took before bulk.py
            await session.execute(insert(T), fill_defaults(T, orm_rows))
            await session.commit()
    assert bulk._direct(engine.sync_engine.dialect, T, tuple(fill_defaults(T, orm_rows)[0])) is not None
    assert await stored(maker, "f") == await stored(maker, "o")
    assert len(await stored(maker, "f")) == 30


async def test_instants_json_and_defaults_round_trip(users: UserDao, backend) -> None:
    before = datetime.now(UTC)
    with acting_as(7):
        await users.create_many(rows("r"))
    after = datetime.now(UTC)
    found = {u.username: u for u in await users.query().all()}
    first, second, third = found["r0"], found["r1"], found["r2"]
    assert first.created_at == AT and first.created_at.tzinfo is UTC
    assert first.created_at.isoformat() == "2024-02-29T23:08:09.123456+00:00"
    assert second.updated_at == NAIVE.replace(tzinfo=UTC)
    shared = (NAIVE + timedelta(hours=5)).replace(tzinfo=UTC)  # r5: one naive object, both columns
    assert found["r5"].created_at == found["r5"].updated_at == shared
    assert first.profile == {} and first.is_active is True  # defaults: dict, True
    assert second.profile == {**PROFILE, "i": 1} and second.is_active is False
    assert third.profile["tags"] == ["é", "ü"] and third.is_active is True
    for user in found.values():
        assert user.version == 1 and user.creator_id == 7 and user.updater_id == 7
        assert user.deleted_at is None
    default_made = await users.create_many([{"username": "d", "email": "d@x.io"}])
    made = await users.query().filter(username="d").one()
    assert (
        default_made == 1 and before <= made.created_at <= datetime.now(UTC) and made.created_at.tzinfo is UTC
    )
    assert made.created_at >= after and made.creator_id is None


async def test_json_is_a_document(users: UserDao, maker, backend) -> None:
    await users.create_many([{"username": "j", "email": "j@x.io", "profile": {"lang": "fr"}}])
    kind = {"sqlite": func.json_type(T.c.profile), "mysql": func.JSON_TYPE(T.c.profile)}
    doc = kind.get(backend.dialect, func.jsonb_typeof(T.c.profile))
    async with maker() as session:
        assert (await session.scalar(select(doc))).lower() == "object"


async def test_caller_and_ambient_transactions_are_joined(users: UserDao) -> None:
    with pytest.raises(RuntimeError):
        async with users.transaction() as session:
            await users.create_many(rows("s"), session=session)
            assert await users.count(session=session) == 30
            raise RuntimeError("roll back")
    with pytest.raises(RuntimeError):
        async with users.transaction():
            await users.create_many(rows("a"))  # the ambient transaction
            raise RuntimeError("roll back")
    assert await users.count() == 0
    async with users.transaction():
        await users.create_many(rows("c"))
    assert await users.count() == 30


async def test_pending_objects_are_flushed_first_as_by_session_execute(users: UserDao) -> None:
    async with users.transaction() as session:
        session.add(User(username="pending", email="pending@x.io"))
        await users.create_many(rows("p"), session=session)
    async with users.transaction(autoflush=False) as session:
        session.add(User(username="later", email="later@x.io"))
        await users.create_many(rows("n"), session=session)
    ids = {u.username: u.id for u in await users.query().all()}
    assert ids["pending"] < min(v for k, v in ids.items() if k.startswith("p") and k != "pending")
    assert ids["later"] > max(v for k, v in ids.items() if k.startswith("n"))


async def test_all_rows_or_none(users: UserDao) -> None:
    many = [{"username": f"u{i}", "email": f"u{i}@x.io"} for i in range(bulk.EXECUTEMANY_ROWS + 5)]
    many.append({"username": "dup", "email": "u0@x.io"})  # fails in the second executemany
    with pytest.raises(DuplicateKeyError):
        await users.create_many(many)
    assert await users.count() == 0


async def test_a_value_the_type_rejects_is_the_orm_paths_error(users: UserDao) -> None:
    bad = rows("b")
    bad[20]["created_at"] = "yesterday"
    with pytest.raises(StatementError, match="UTCDateTime expects a datetime") as caught:
        await users.create_many(bad)
    assert isinstance(caught.value.orig, TypeError)
    assert await users.count() == 0


async def test_session_hooks_see_the_insert(users: UserDao, engine: AsyncEngine) -> None:
    class Hooked(Session):
        pass

    seen: list[bool] = []

    @event.listens_for(Hooked, "do_orm_execute")
    def _record(state: ORMExecuteState) -> None:
        seen.append(state.is_insert)

    hooked = async_sessionmaker(engine, sync_session_class=Hooked, expire_on_commit=False)
    async with hooked() as session:
        assert await users.create_many(rows("h"), session=session) == 30
        await session.commit()
    assert seen == [True] and await users.count() == 30


async def test_slow_query_events_see_the_executemany(create_tables, backend, caplog) -> None:
    engine = backend.engine(slow_query_threshold=0.0)
    try:
        await create_tables(User.metadata)
        dao = UserDao(session_provider=new_async_session_maker(engine))
        with caplog.at_level(logging.WARNING):
            await dao.create_many(rows("q"))
    finally:
        await engine.dispose()
    assert any(
        "executemany x30" in r.getMessage() and "INSERT INTO users" in r.getMessage() for r in caplog.records
    )


# -- the shortcut processors give exactly the type's own result ------------------------
VALUES: list[Any] = [
    None,
    AT,
    NAIVE,
    datetime(2024, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2024, 1, 1, 0, 0, 0, 0, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, 1),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    {"a": [1, "é", None]},
    {1: 2},
    [],
    True,
    False,
]


@pytest.mark.parametrize("type_", [UTCDateTime(), DateTime(timezone=True), JSONType(), JSON(), Boolean()])
def test_shortcuts_agree_with_the_types(engine: AsyncEngine, type_: Any) -> None:
    dialect = engine.sync_engine.dialect
    slow = type_.dialect_impl(dialect).bind_processor(dialect)
    fast = bulk._processor(type_, dialect)
    if slow is None:
        assert fast is None
        return
    for value in [*VALUES, date(2024, 1, 1), "text", 3]:
        try:
            expected: Any = ("ok", slow(value))
        except Exception as exc:
            expected = ("raises", type(exc))
        try:
            got: Any = ("ok", fast(value))
        except Exception as exc:
            got = ("raises", type(exc))
        assert (repr(got), type(got[1])) == (repr(expected), type(expected[1])), value


def test_rows_are_filled_as_fill_defaults_fills_them() -> None:
    mixed = rows("m")  # explicit timestamps: every filled default is deterministic
    made = bulk.bulk_rows(User, iter(mixed))
    assert made.count == 30 and made.dicts() == fill_defaults(T, mixed)
    assert [list(r) for r in made.dicts()] == [list(r) for r in fill_defaults(T, mixed)]
    assert made.dicts(10, 12) == fill_defaults(T, mixed)[10:12]


def test_only_identical_datetime_types_share_a_conversion() -> None:
    types = [UTCDateTime(), String(20), UTCDateTime(), DateTime(timezone=True), DateTime(timezone=True)]
    assert bulk._same_as([*types, DateTime(), JSONType(), JSONType()]) == (
        None,
        None,
        0,
        None,
        3,
        None,
        None,
        None,
    )


def test_oracle_takes_the_orm_path() -> None:
    dialect = oracle.dialect()
    made = bulk.bulk_rows(User, rows("o"))
    assert bulk._direct(dialect, T, made.keys) is None  # setinputsizes: SQLAlchemy's own path
    text = str(insert(T).compile(dialect=dialect, column_keys=list(made.keys), for_executemany=True))
    columns = "username, email, is_active, profile, created_at, updated_at, version, creator_id, updater_id"
    assert text.startswith(f"INSERT INTO users ({columns}) VALUES (:username, :email, :is_active")
