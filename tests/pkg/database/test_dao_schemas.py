"""Schemas in and out: ``create(schema)``, partial ``update_by_id(pk, schema)``, and
``query().as_schema(S)`` selecting only S's columns."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from internal.dao import UserDao
from pkg.database.errors import NotFoundError, QueryError, UnknownFieldError
from tests.pkg.database.sql_capture import captured_statements


class UserIn(BaseModel):
    username: str
    email: str
    is_active: bool = True


class UserPatch(BaseModel):
    username: str | None = None
    email: str | None = None
    is_active: bool | None = None
    profile: dict[str, Any] = Field(default_factory=dict)


class UserBrief(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    email: str


async def test_create_takes_a_schema_and_keyword_values(users: UserDao) -> None:
    user = await users.create(UserIn(username="ann", email="ann@x.io"), profile={"a": 1})
    stored = await users.get_or_raise(user.id)
    assert (stored.username, stored.email, stored.is_active, stored.profile) == (
        "ann",
        "ann@x.io",
        True,
        {"a": 1},
    )


async def test_update_with_a_schema_changes_only_the_fields_sent(users: UserDao) -> None:
    user = await users.create(username="ann", email="ann@x.io", profile={"keep": True})
    updated = await users.update_by_id(user.id, UserPatch(is_active=False))  # profile's default unsent
    stored = await users.get_or_raise(user.id)
    assert (stored.username, stored.email, stored.profile, stored.is_active) == (
        "ann",
        "ann@x.io",
        {"keep": True},
        False,
    )
    assert updated.version == stored.version == 2


async def test_update_with_partial_false_replaces_every_field(users: UserDao) -> None:
    user = await users.create(username="ann", email="ann@x.io", profile={"keep": True})
    await users.update_by_id(user.id, UserIn(username="bob", email="bob@x.io"), partial=False)
    stored = await users.get_or_raise(user.id)
    assert (stored.username, stored.email, stored.is_active) == ("bob", "bob@x.io", True)


async def test_a_schema_field_that_is_no_column_is_refused(users: UserDao) -> None:
    class Extra(BaseModel):
        nickname: str = "x"

    with pytest.raises(UnknownFieldError, match="nickname"):
        await users.create(Extra(), username="a", email="a@x.io")
    with pytest.raises(QueryError, match="pydantic model or a mapping"):
        await users.create(42)  # type: ignore[arg-type]


async def test_as_schema_selects_only_the_schema_columns(engine: AsyncEngine, users: UserDao) -> None:
    for i in range(3):
        await users.create(username=f"u{i}", email=f"u{i}@x.io", profile={"big": "x" * 100})
    query = users.query().filter(username__in=["u1", "u2"]).order_by("-id").as_schema(UserBrief)
    with captured_statements(engine) as seen:
        found = await query.all()
    assert [b.email for b in found] == ["u2@x.io", "u1@x.io"] and isinstance(found[0], UserBrief)
    assert len(seen) == 1
    selected = re.split(r"\sFROM\s", seen[0].upper())[0]
    assert "USERS.ID" in selected and "USERS.EMAIL" in selected
    assert "USERNAME" not in selected and "PROFILE" not in selected and "VERSION" not in selected
    page = await users.query().order_by("id").as_schema(UserBrief).page(2, 2)
    assert page.total == 3 and [b.email for b in page.items] == ["u2@x.io"]
    assert (await users.query().filter(username="u0").as_schema(UserBrief).one()).email == "u0@x.io"
    with pytest.raises(NotFoundError):
        await users.query().filter(username="none").as_schema(UserBrief).one()


async def test_as_schema_with_an_unknown_field_fails_before_sql(users: UserDao) -> None:
    class Wrong(BaseModel):
        id: int
        nickname: str

    with pytest.raises(UnknownFieldError, match="unknown schema field 'nickname'"):
        users.query().as_schema(Wrong)
