"""Request and response bodies of the web API (pydantic v2).

Example::

    UserCreate(username="ada", email="ada@example.com")      # POST /users
    UserUpdate(email="ada@new.example", version=1)           # PATCH /users/{id}, 409 if stale
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DbHealthOut",
    "ErrorOut",
    "HealthOut",
    "SchemaOut",
    "SleepOut",
    "UserCreate",
    "UserCursorPage",
    "UserOut",
    "UserPage",
    "UserUpdate",
]

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class UserCreate(BaseModel):
    """A new user; unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, examples=["ada"])
    email: str = Field(max_length=255, pattern=_EMAIL, examples=["ada@example.com"])
    is_active: bool = True
    profile: dict[str, Any] = Field(default_factory=dict)


class UserUpdate(BaseModel):
    """A partial update: only the fields sent change (``update_by_id(pk, body)``); ``null`` is
    refused (422): every column here is NOT NULL. ``version`` (optional) is the version you
    read: 409 if it moved on."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(None, min_length=1, max_length=64)
    email: str | None = Field(None, max_length=255, pattern=_EMAIL)
    is_active: bool | None = None
    profile: dict[str, Any] | None = None
    version: int | None = Field(None, ge=1, description="optimistic lock: the version you read")

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Absent keeps the stored value (defaults are not validated); an explicit null is 422."""
        if value is None:
            raise ValueError("null is not allowed: leave the field out to keep its value")
        return value


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str
    is_active: bool
    profile: dict[str, Any] | None = None
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


class UserPage(BaseModel):
    """Offset pagination: ``?page=&size=``."""

    items: list[UserOut]
    total: int
    page: int
    size: int
    pages: int


class UserCursorPage(BaseModel):
    """Keyset pagination: ``?cursor=`` (empty for the first page); ``next_cursor`` null at the end."""

    items: list[UserOut]
    next_cursor: str | None


class ErrorOut(BaseModel):
    detail: str
    code: str


class HealthOut(BaseModel):
    status: str


class SchemaOut(BaseModel):
    """The migration revision of the database, the code's head, and whether they match."""

    revision: str | None
    head: str | None
    current: bool


class DbHealthOut(BaseModel):
    status: str
    latency_ms: float | None = None
    error: str | None = None
    pool: dict[str, Any] | None = None
    migrations: SchemaOut | None = None


class SleepOut(BaseModel):
    slept: float
    backend: str
