"""Base naming convention and the mixins' bookkeeping on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import NAMING_CONVENTION, Base

PAST = datetime(2020, 1, 1, tzinfo=UTC)


def test_naming_convention_names_constraints() -> None:
    assert Base.metadata.naming_convention == NAMING_CONVENTION
    names = {c.name for c in User.__table__.constraints}
    assert {"pk_users", "uq_users_email"} <= names
    assert {i.name for i in User.__table__.indexes} == {"ix_users_username"}


def test_version_mixin_is_the_mapper_version_counter() -> None:
    assert inspect(User).version_id_col is User.__table__.c.version


async def test_orm_flush_maintains_updated_at_and_version(users: UserDao) -> None:
    user = await users.create(username="a", email="a@x.io", created_at=PAST, updated_at=PAST)
    changed = await users.update_by_id(user.id, username="b")
    assert changed.created_at == PAST and changed.updated_at > PAST + timedelta(days=365)
    row = await users.get_or_raise(user.id)
    assert row.updated_at == changed.updated_at and row.version == 2


async def test_builder_and_bulk_updates_maintain_updated_at(users: UserDao) -> None:
    user = await users.create(username="a", email="a@x.io", created_at=PAST, updated_at=PAST)
    await users.query().filter(id=user.id).update(username="b")
    row = await users.get_or_raise(user.id)
    assert row.updated_at > PAST + timedelta(days=365) and row.created_at == PAST
    await users.query().filter(id=user.id).update(updated_at=PAST)  # explicit value wins
    assert (await users.get_or_raise(user.id)).updated_at == PAST


async def test_upsert_conflict_branch_maintains_updated_at(users: UserDao) -> None:
    await users.create(username="a", email="a@x.io", created_at=PAST, updated_at=PAST)
    row = await users.upsert({"email": "a@x.io", "username": "b"}, conflict_on=["email"])
    assert row.created_at == PAST and row.updated_at > PAST and row.version == 2
