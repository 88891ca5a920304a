"""The benchmark workloads: each one as raw driver, plain SQLAlchemy ORM, Tortoise ORM and the
kit's DAO, side by side.

Each function takes the shared context and the op index and does ONE operation the way a
request handler would (own connection / session, own transaction). ``orm`` runs on a plain
``create_async_engine`` (SQLAlchemy's defaults), ``kit`` on ``new_async_engine`` with the
kit's defaults (pre-ping, slow-query events, leak tracking, cleanup); both pools hold 10.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench import tortoise_app as tt
from bench.raw import Raw
from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import utcnow

T = User.__table__
COLUMNS = "username, email, is_active, profile, created_at, updated_at, version"
APPROACHES = ("raw", "orm", "tortoise", "kit")


@dataclass
class Ctx:
    """Everything a workload needs; ``ids`` are live primary keys to read."""

    engine: AsyncEngine  # the kit's engine (kit defaults)
    maker: async_sessionmaker[AsyncSession]  # plain ORM sessions on a default SQLAlchemy engine
    dao: UserDao  # on the kit's engine
    raw: Raw
    backend: str
    ids: list[int] = field(default_factory=list)
    spare: dict[str, list[int]] = field(default_factory=dict)  # per approach: ids to delete


def row(prefix: str, i: int) -> dict[str, Any]:
    now = utcnow()
    return {
        "username": f"{prefix}{i}",
        "email": f"{prefix}{i}@bench.io",
        "is_active": i % 3 != 0,
        "profile": {"n": i},
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def raw_args(ctx: Ctx, r: dict[str, Any]) -> tuple[Any, ...]:
    """Row values in the form the raw driver takes (JSON as text, naive UTC where needed)."""
    when = r["created_at"] if ctx.backend == "postgresql" else r["created_at"].replace(tzinfo=None)
    profile = f'{{"n": {r["profile"]["n"]}}}'
    if ctx.backend == "sqlite":
        when = when.isoformat(sep=" ")
    return (r["username"], r["email"], r["is_active"], profile, when, when, 1)


RAW_INSERT = f"INSERT INTO users ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


# -- single insert ----------------------------------------------------------------------
async def insert_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.execute(RAW_INSERT, *raw_args(ctx, row("r", i)))


async def insert_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        s.add(User(**row("o", i)))
        await s.commit()


async def insert_tortoise(ctx: Ctx, i: int) -> None:
    await tt.insert(row("t", i))


async def insert_kit(ctx: Ctx, i: int) -> None:
    await ctx.dao.create(**row("d", i))


# -- get by primary key -----------------------------------------------------------------
def pick(ctx: Ctx, i: int) -> int:
    return ctx.ids[(i * 7919) % len(ctx.ids)]


async def get_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.fetch(f"SELECT id, {COLUMNS} FROM users WHERE id = ?", pick(ctx, i))


async def get_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        await s.get(User, pick(ctx, i))


async def get_tortoise(ctx: Ctx, i: int) -> None:
    await tt.get(pick(ctx, i))


async def get_kit(ctx: Ctx, i: int) -> None:
    await ctx.dao.get(pick(ctx, i))


# -- filtered page of 50 (count + rows) -------------------------------------------------
async def page_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.fetchval("SELECT count(*) FROM users WHERE is_active = ? AND deleted_at IS NULL", True)
    await ctx.raw.fetch(
        f"SELECT id, {COLUMNS} FROM users WHERE is_active = ? AND deleted_at IS NULL "
        "ORDER BY created_at DESC, id LIMIT 50 OFFSET ?",
        True,
        (i % 20) * 50,
    )


async def page_orm(ctx: Ctx, i: int) -> None:
    where = (User.is_active == true(), User.deleted_at.is_(None))
    async with ctx.maker() as s:
        await s.scalar(select(func.count()).select_from(User).where(*where))
        stmt = select(User).where(*where).order_by(User.created_at.desc(), User.id)
        (await s.scalars(stmt.limit(50).offset((i % 20) * 50))).all()


async def page_tortoise(ctx: Ctx, i: int) -> None:
    await tt.page((i % 20) * 50)


async def page_kit(ctx: Ctx, i: int) -> None:
    await ctx.dao.query().filter(is_active=True).order_by("-created_at").page(i % 20 + 1, 50)


# -- count (active users in a primary-key range) ---------------------------------------
def span(ctx: Ctx, i: int) -> tuple[int, int]:
    low = pick(ctx, i)
    return low, low + 1000


async def count_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.fetchval(
        "SELECT count(*) FROM users WHERE is_active = ? AND id BETWEEN ? AND ? AND deleted_at IS NULL",
        True,
        *span(ctx, i),
    )


async def count_orm(ctx: Ctx, i: int) -> None:
    where = (User.is_active == true(), User.id.between(*span(ctx, i)), User.deleted_at.is_(None))
    async with ctx.maker() as s:
        await s.scalar(select(func.count()).select_from(User).where(*where))


async def count_tortoise(ctx: Ctx, i: int) -> None:
    await tt.count(*span(ctx, i))


async def count_kit(ctx: Ctx, i: int) -> None:
    await ctx.dao.count(is_active=True, id__between=span(ctx, i))


# -- update by primary key, rowcount only (no object back) -------------------------------
async def update_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.execute(
        "UPDATE users SET username = ?, version = version + 1 WHERE id = ?", f"ru{i}", pick(ctx, i)
    )


async def update_orm(ctx: Ctx, i: int) -> None:
    changes = {"username": f"ou{i}", "version": User.version + 1, "updated_at": utcnow()}
    async with ctx.maker() as s:
        await s.execute(update(User).where(User.id == pick(ctx, i)).values(changes))
        await s.commit()


async def update_tortoise(ctx: Ctx, i: int) -> None:
    await tt.update(pick(ctx, i), f"tu{i}")


async def update_kit(ctx: Ctx, i: int) -> None:
    await ctx.dao.query().filter(id=pick(ctx, i)).update(username=f"du{i}")


# -- update by primary key, the updated object back -------------------------------------
async def update_back_raw(ctx: Ctx, i: int) -> None:
    pk, sql = pick(ctx, i), "UPDATE users SET username = ?, version = version + 1 WHERE id = ?"
    if ctx.backend == "mysql":  # MariaDB has no UPDATE ... RETURNING
        await ctx.raw.execute(sql, f"rb{i}", pk)
        await ctx.raw.fetch("SELECT * FROM users WHERE id = ?", pk)
    else:
        await ctx.raw.fetch(f"{sql} RETURNING *", f"rb{i}", pk)


async def update_back_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        user = await s.get(User, pick(ctx, i))
        assert user is not None
        user.username = f"ob{i}"
        await s.commit()


async def update_back_tortoise(ctx: Ctx, i: int) -> None:
    await tt.load_and_save(pick(ctx, i), f"tb{i}")


async def update_back_kit(ctx: Ctx, i: int) -> None:
    await ctx.dao.update_by_id(pick(ctx, i), username=f"db{i}")


# -- delete by primary key --------------------------------------------------------------
async def delete_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.execute("DELETE FROM users WHERE id = ?", ctx.spare["raw"][i])


async def delete_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        await s.execute(delete(User).where(User.id == ctx.spare["orm"][i]))
        await s.commit()


async def delete_tortoise(ctx: Ctx, i: int) -> None:
    await tt.delete(ctx.spare["tortoise"][i])


async def delete_kit(ctx: Ctx, i: int) -> None:
    await ctx.dao.delete_by_id(ctx.spare["kit"][i])


Op = Callable[[Ctx, int], Awaitable[None]]
WORKLOADS: dict[str, dict[str, Op]] = {
    "insert one row": {"raw": insert_raw, "orm": insert_orm, "tortoise": insert_tortoise, "kit": insert_kit},
    "get by PK": {"raw": get_raw, "orm": get_orm, "tortoise": get_tortoise, "kit": get_kit},
    "filtered page of 50": {"raw": page_raw, "orm": page_orm, "tortoise": page_tortoise, "kit": page_kit},
    "count": {"raw": count_raw, "orm": count_orm, "tortoise": count_tortoise, "kit": count_kit},
    "update by PK": {"raw": update_raw, "orm": update_orm, "tortoise": update_tortoise, "kit": update_kit},
    "update by PK, object back": {
        "raw": update_back_raw,
        "orm": update_back_orm,
        "tortoise": update_back_tortoise,
        "kit": update_back_kit,
    },
    "delete by PK": {"raw": delete_raw, "orm": delete_orm, "tortoise": delete_tortoise, "kit": delete_kit},
}
GETS: dict[str, Op] = WORKLOADS["get by PK"]
