"""BaseDao single-row CRUD, soft delete, audit columns and error types on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import acting_as
from pkg.database.errors import (
    ConfigurationError,
    DuplicateKeyError,
    NotFoundError,
    StaleDataError,
    UnknownFieldError,
)


async def test_create_sets_pk_defaults_and_timestamps(users: UserDao) -> None:
    user = await users.create(username="ann", email="ann@example.com")
    assert isinstance(user.id, int) and user.id > 0
    assert user.is_active is True and user.profile == {} and user.version == 1
    assert user.created_at.tzinfo is not None and user.created_at.utcoffset() == timedelta(0)
    again = await users.get_or_raise(user.id)
    assert again.created_at == user.created_at and again.created_at.tzinfo is not None


async def test_aware_datetime_is_converted_to_utc_not_stripped(users: UserDao) -> None:
    plus2 = timezone(timedelta(hours=2))
    user = await users.create(
        username="tz", email="tz@x.io", created_at=datetime(2024, 1, 1, 12, 0, tzinfo=plus2)
    )
    loaded = await users.get_or_raise(user.id)
    assert loaded.created_at == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert loaded.created_at.utcoffset() == timedelta(0)


async def test_get_missing_and_get_or_raise(users: UserDao) -> None:
    assert await users.get(12345) is None
    with pytest.raises(NotFoundError):
        await users.get_or_raise(12345)


async def test_get_many_keeps_order_and_skips_missing(users: UserDao) -> None:
    a = await users.create(username="a", email="a@x.io")
    b = await users.create(username="b", email="b@x.io")
    got = await users.get_many([b.id, 999, a.id])
    assert [u.id for u in got] == [b.id, a.id]
    assert await users.get_many([]) == []


async def test_update_by_id_changes_row_bumps_version_and_timestamp(users: UserDao) -> None:
    user = await users.create(username="old", email="u@x.io")
    updated = await users.update_by_id(user.id, username="new")
    assert updated.username == "new" and updated.version == 2
    assert updated.updated_at >= user.updated_at
    fresh = await users.get_or_raise(user.id)
    assert fresh.username == "new" and fresh.version == 2


async def test_update_by_id_missing_and_stale_version(users: UserDao) -> None:
    with pytest.raises(NotFoundError):
        await users.update_by_id(777, username="x")
    user = await users.create(username="v", email="v@x.io")
    await users.update_by_id(user.id, username="v2", version=1)
    with pytest.raises(StaleDataError):
        await users.update_by_id(user.id, username="v3", version=1)
    assert (await users.get_or_raise(user.id)).username == "v2"


async def test_update_by_id_unknown_field(users: UserDao) -> None:
    user = await users.create(username="f", email="f@x.io")
    with pytest.raises(UnknownFieldError) as info:
        await users.update_by_id(user.id, usernme="typo")
    assert "username" in info.value.valid


async def test_delete_by_id(users: UserDao) -> None:
    user = await users.create(username="d", email="d@x.io")
    assert await users.delete_by_id(user.id) is True
    assert await users.delete_by_id(user.id) is False
    assert await users.get(user.id, include_deleted=True) is None


async def test_soft_delete_hides_row_from_reads_and_restore_brings_it_back(users: UserDao) -> None:
    user = await users.create(username="s", email="s@x.io")
    await users.create(username="t", email="t@x.io")
    assert await users.soft_delete_by_id(user.id) is True
    assert await users.soft_delete_by_id(user.id) is False
    assert await users.get(user.id) is None
    assert await users.count() == 1 and not await users.exists(username="s")
    assert [u.username for u in await users.query().all()] == ["t"]
    hidden = await users.get_or_raise(user.id, include_deleted=True)
    assert hidden.deleted_at is not None and hidden.version == 2
    assert await users.restore_by_id(user.id) is True
    assert await users.restore_by_id(user.id) is False
    assert (await users.get_or_raise(user.id)).deleted_at is None


async def test_duplicate_email_raises_duplicate_key_naming_constraint(users: UserDao, backend) -> None:
    await users.create(username="a", email="dup@x.io")
    with pytest.raises(DuplicateKeyError) as info:
        await users.create(username="b", email="dup@x.io")
    assert info.value.__cause__ is not None
    expected = "users.email" if backend.name == "sqlite" else "uq_users_email"
    assert info.value.constraint == expected


async def test_audit_columns_follow_actor(users: UserDao) -> None:
    anonymous = await users.create(username="n", email="n@x.io")
    assert anonymous.creator_id is None and anonymous.updater_id is None
    with acting_as(42):
        made = await users.create(username="m", email="m@x.io")
    assert made.creator_id == 42 and made.updater_id == 42
    with acting_as(7):
        changed = await users.update_by_id(made.id, username="m2")
        assert await users.query().filter(id=anonymous.id).update(is_active=False) == 1
    assert changed.creator_id == 42 and changed.updater_id == 7
    row = await users.get_or_raise(anonymous.id)
    assert row.updater_id == 7 and row.creator_id is None


async def test_session_argument_joins_callers_transaction(users: UserDao, maker) -> None:
    async with maker() as session:
        user = await users.create(username="j", email="j@x.io", session=session)
        assert await users.get(user.id, session=session) is not None
        await session.rollback()
    assert await users.count() == 0


def test_dao_without_model_cls_is_a_configuration_error(maker) -> None:
    class Broken(UserDao):
        model_cls = None  # type: ignore[assignment]

    with pytest.raises(ConfigurationError):
        Broken(session_provider=maker)


async def test_json_profile_round_trip(users: UserDao) -> None:
    profile = {"lang": "fr", "tags": ["a", "b"], "quote": 'it\'s "x"', "n": 1.5}
    user = await users.create(username="p", email="p@x.io", profile=profile)
    async with users.session_provider() as session:
        stored = (await session.execute(select(User.profile).where(User.id == user.id))).scalar_one()
    assert stored == profile
