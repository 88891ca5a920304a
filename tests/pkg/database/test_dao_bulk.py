"""create_many, upsert and upsert_many on every backend, and JSON stored as a document."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from internal.dao.user import UserDao
from pkg.database import acting_as, new_async_session_maker
from pkg.database.errors import UnknownFieldError

JSON_CHECKS = {
    "sqlite": ("json_type(profile)", "json_extract(profile, '$.lang')", "object", "fr"),
    "postgresql": ("jsonb_typeof(profile)", "profile->>'lang'", "object", "fr"),
    "mysql": ("JSON_TYPE(profile)", "JSON_UNQUOTE(JSON_EXTRACT(profile, '$.lang'))", "OBJECT", "fr"),
}


async def test_create_many_100k_rows(users: UserDao) -> None:
    rows = ({"username": f"u{i}", "email": f"u{i}@x.io"} for i in range(100_000))
    assert await users.create_many(rows) == 100_000
    assert await users.count() == 100_000
    last = await users.query().filter(email="u99999@x.io").one()
    assert last.version == 1 and last.created_at is not None and last.profile == {}


async def test_create_many_mixed_keys_and_empty(users: UserDao) -> None:
    assert await users.create_many([]) == 0
    with acting_as(5):
        n = await users.create_many(
            [{"username": "a", "email": "a@x.io", "profile": {"k": 1}}, {"username": "b", "email": "b@x.io"}]
        )
    assert n == 2
    a, b = await users.query().order_by("username").all()
    assert a.profile == {"k": 1} and b.profile == {} and a.creator_id == b.creator_id == 5


async def test_create_many_unknown_field(users: UserDao) -> None:
    with pytest.raises(UnknownFieldError):
        await users.create_many([{"username": "a", "email": "a@x.io", "nope": 1}])
    assert await users.count() == 0


async def test_upsert_inserts_then_updates(users: UserDao) -> None:
    made = await users.upsert({"email": "a@x.io", "username": "first"}, conflict_on=["email"])
    assert made.id and made.username == "first" and made.version == 1
    with acting_as(9):
        again = await users.upsert({"email": "a@x.io", "username": "second"}, conflict_on=["email"])
    assert again.id == made.id and again.username == "second" and again.version == 2
    assert again.created_at == made.created_at and again.updated_at >= made.updated_at
    assert again.updater_id == 9 and again.creator_id is None
    assert await users.count() == 1


async def test_upsert_many_chunks_and_dedupes(users: UserDao) -> None:
    await users.create(username="old", email="u0@x.io")
    rows = [{"email": f"u{i}@x.io", "username": f"n{i}"} for i in range(5000)]
    rows.append({"email": "u1@x.io", "username": "last-wins"})
    assert await users.upsert_many(rows, conflict_on=["email"]) == 5000
    assert await users.count() == 5000
    assert (await users.query().filter(email="u0@x.io").one()).username == "n0"
    assert (await users.query().filter(email="u1@x.io").one()).username == "last-wins"


async def test_upsert_conflict_target_must_be_unique(users: UserDao) -> None:
    with pytest.raises(UnknownFieldError) as info:
        await users.upsert({"email": "a@x.io", "username": "x"}, conflict_on=["username"])
    assert "email" in info.value.valid and "id" in info.value.valid
    with pytest.raises(UnknownFieldError):
        await users.upsert({"email": "a@x.io"}, conflict_on=["emial"])


async def test_concurrent_upserts_same_key_from_20_tasks(backend, create_tables) -> None:
    engine = backend.engine(pool_size=20, max_overflow=5)
    try:
        await create_tables(UserDao.model_cls.metadata)
        dao = UserDao(session_provider=new_async_session_maker(engine))
        results = await asyncio.gather(
            *(
                dao.upsert({"email": "same@x.io", "username": f"t{i}"}, conflict_on=["email"])
                for i in range(20)
            )
        )
        assert len({u.id for u in results}) == 1
        row = await dao.query().filter(email="same@x.io").one()
        assert await dao.count() == 1 and row.version == 20
    finally:
        await engine.dispose()


async def test_json_is_stored_as_a_document(users: UserDao, engine, backend) -> None:
    type_sql, extract_sql, kind, value = JSON_CHECKS[backend.dialect]
    await users.create(username="j", email="j@x.io", profile={"lang": "fr", "n": [1, 2]})
    await users.upsert({"email": "k@x.io", "username": "k", "profile": {"lang": "fr"}}, conflict_on=["email"])
    await users.create_many([{"username": "m", "email": "m@x.io", "profile": {"lang": "fr"}}])
    async with engine.connect() as conn:
        rows = (await conn.execute(text(f"SELECT {type_sql}, {extract_sql} FROM users"))).all()
    assert [tuple(r) for r in rows] == [(kind, value)] * 3
