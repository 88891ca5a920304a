"""Tortoise ORM over the same ``users`` table: the model and the workloads, written as a
Tortoise user would (``Model.create``, ``get_or_none``, ``filter().update()`` ...).

Bench-only (``pip install -e '.[bench]'``). Tortoise keeps one global registry, so
:func:`start` / :func:`stop` bracket each use; the URL is the bench database's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from tortoise import Tortoise, fields
from tortoise.expressions import F
from tortoise.models import Model

from pkg.database import utcnow


class TUser(Model):
    """``users`` as Tortoise sees it (the table is created by SQLAlchemy)."""

    id = fields.BigIntField(primary_key=True)
    username = fields.CharField(max_length=100)
    email = fields.CharField(max_length=255, unique=True)
    is_active = fields.BooleanField(default=True)
    profile: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)
    version = fields.IntField(default=1)
    creator_id = fields.BigIntField(null=True)
    updater_id = fields.BigIntField(null=True)

    class Meta:
        table = "users"


def tortoise_url(url: str, pool: int) -> str:
    """The bench's SQLAlchemy URL in Tortoise's form, ``pool`` connections."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return f"sqlite://{u.database}"
    scheme = "asyncpg" if backend == "postgresql" else "mysql"
    auth = u.username or ""
    if u.password:
        auth += f":{u.password}"
    port = u.port or (5432 if backend == "postgresql" else 3306)
    return f"{scheme}://{auth}@{u.host}:{port}/{u.database}?minsize={pool}&maxsize={pool}"


async def start(url: str, pool: int) -> None:
    await Tortoise.init(
        db_url=tortoise_url(url, pool), modules={"models": [__name__]}, use_tz=True, timezone="UTC"
    )


async def stop() -> None:
    await Tortoise.close_connections()


async def insert(values: dict[str, Any]) -> None:
    await TUser.create(**values)


async def get(pk: int) -> None:
    await TUser.get_or_none(id=pk)


async def page(offset: int) -> None:
    live = TUser.filter(is_active=True, deleted_at__isnull=True)
    await live.count()
    await live.order_by("-created_at", "id").offset(offset).limit(50)


async def count(low: int, high: int) -> None:
    await TUser.filter(is_active=True, id__range=(low, high), deleted_at__isnull=True).count()


async def update(pk: int, username: str) -> None:
    await TUser.filter(id=pk).update(username=username, version=F("version") + 1, updated_at=utcnow())


async def load_and_save(pk: int, username: str) -> None:
    """The updated object back: load it, change it, save the changed fields."""
    user = await TUser.get(id=pk)
    user.username, user.version, user.updated_at = username, user.version + 1, utcnow()
    await user.save(update_fields=["username", "version", "updated_at"])


async def delete(pk: int) -> None:
    await TUser.filter(id=pk).delete()


async def bulk(rows: list[dict[str, Any]]) -> None:
    await TUser.bulk_create([TUser(**r) for r in rows], batch_size=5000)
