"""The benchmark workloads: each one as raw driver, Core, ORM and DAO code, side by side.

Each function takes the shared context and the op index and does ONE operation the way a
request handler would (own connection / session, own transaction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.raw import Raw
from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import utcnow

T = User.__table__
COLUMNS = "username, email, is_active, profile, created_at, updated_at, version"


@dataclass
class Ctx:
    """Everything a workload needs; ``ids`` are live primary keys to read."""

    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    dao: UserDao
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


async def insert_core(ctx: Ctx, i: int) -> None:
    async with ctx.engine.begin() as conn:
        await conn.execute(insert(T), row("c", i))


async def insert_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        s.add(User(**row("o", i)))
        await s.commit()


async def insert_dao(ctx: Ctx, i: int) -> None:
    await ctx.dao.create(**row("d", i))


# -- get by primary key -----------------------------------------------------------------
def pick(ctx: Ctx, i: int) -> int:
    return ctx.ids[(i * 7919) % len(ctx.ids)]


async def get_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.fetch(f"SELECT id, {COLUMNS} FROM users WHERE id = ?", pick(ctx, i))


async def get_core(ctx: Ctx, i: int) -> None:
    async with ctx.engine.connect() as conn:
        (await conn.execute(select(T).where(T.c.id == pick(ctx, i)))).first()


async def get_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        await s.get(User, pick(ctx, i))


async def get_dao(ctx: Ctx, i: int) -> None:
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


def _page_where() -> Any:
    return (T.c.is_active == true(), T.c.deleted_at.is_(None))


async def page_core(ctx: Ctx, i: int) -> None:
    async with ctx.engine.connect() as conn:
        await conn.scalar(select(func.count()).select_from(T).where(*_page_where()))
        stmt = select(T).where(*_page_where()).order_by(T.c.created_at.desc(), T.c.id)
        (await conn.execute(stmt.limit(50).offset((i % 20) * 50))).all()


async def page_orm(ctx: Ctx, i: int) -> None:
    where = (User.is_active == true(), User.deleted_at.is_(None))
    async with ctx.maker() as s:
        await s.scalar(select(func.count()).select_from(User).where(*where))
        stmt = select(User).where(*where).order_by(User.created_at.desc(), User.id)
        (await s.scalars(stmt.limit(50).offset((i % 20) * 50))).all()


async def page_dao(ctx: Ctx, i: int) -> None:
    await ctx.dao.query().filter(is_active=True).order_by("-created_at").page(i % 20 + 1, 50)


# -- dicts(): 50 plain rows ------------------------------------------------------------
async def dicts_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.fetch(
        f"SELECT id, {COLUMNS} FROM users WHERE is_active = ? AND deleted_at IS NULL ORDER BY id LIMIT 50",
        True,
    )


async def dicts_core(ctx: Ctx, i: int) -> None:
    stmt = select(T).where(*_page_where()).order_by(T.c.id).limit(50)
    async with ctx.engine.connect() as conn:
        [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def dicts_orm(ctx: Ctx, i: int) -> None:
    stmt = select(T).where(*_page_where()).order_by(T.c.id).limit(50)
    async with ctx.maker() as s:
        [dict(r) for r in (await s.execute(stmt)).mappings()]


async def dicts_dao(ctx: Ctx, i: int) -> None:
    await ctx.dao.query().filter(is_active=True).order_by("id").limit(50).dicts()


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


def _count_where(ctx: Ctx, i: int) -> Any:
    return (T.c.is_active == true(), T.c.id.between(*span(ctx, i)), T.c.deleted_at.is_(None))


async def count_core(ctx: Ctx, i: int) -> None:
    async with ctx.engine.connect() as conn:
        await conn.scalar(select(func.count()).select_from(T).where(*_count_where(ctx, i)))


async def count_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        await s.scalar(select(func.count()).select_from(User).where(*_count_where(ctx, i)))


async def count_dao(ctx: Ctx, i: int) -> None:
    await ctx.dao.count(is_active=True, id__between=span(ctx, i))


# -- update by primary key --------------------------------------------------------------
async def update_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.execute(
        "UPDATE users SET username = ?, version = version + 1 WHERE id = ?", f"ru{i}", pick(ctx, i)
    )


async def update_core(ctx: Ctx, i: int) -> None:
    stmt = update(T).where(T.c.id == pick(ctx, i)).values(username=f"cu{i}", version=T.c.version + 1)
    async with ctx.engine.begin() as conn:
        await conn.execute(stmt)


async def update_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        user = await s.get(User, pick(ctx, i))
        assert user is not None
        user.username = f"ou{i}"
        await s.commit()


async def update_dao(ctx: Ctx, i: int) -> None:
    await ctx.dao.update_by_id(pick(ctx, i), username=f"du{i}")


# -- delete by primary key --------------------------------------------------------------
async def delete_raw(ctx: Ctx, i: int) -> None:
    await ctx.raw.execute("DELETE FROM users WHERE id = ?", ctx.spare["raw"][i])


async def delete_core(ctx: Ctx, i: int) -> None:
    async with ctx.engine.begin() as conn:
        await conn.execute(delete(T).where(T.c.id == ctx.spare["core"][i]))


async def delete_orm(ctx: Ctx, i: int) -> None:
    async with ctx.maker() as s:
        await s.execute(delete(User).where(User.id == ctx.spare["orm"][i]))
        await s.commit()


async def delete_dao(ctx: Ctx, i: int) -> None:
    await ctx.dao.delete_by_id(ctx.spare["dao"][i])


Op = Callable[[Ctx, int], Awaitable[None]]
WORKLOADS: dict[str, dict[str, Op]] = {
    "single insert": {"raw": insert_raw, "core": insert_core, "orm": insert_orm, "dao": insert_dao},
    "get by PK": {"raw": get_raw, "core": get_core, "orm": get_orm, "dao": get_dao},
    "filtered page of 50": {"raw": page_raw, "core": page_core, "orm": page_orm, "dao": page_dao},
    "dicts() 50 rows": {"raw": dicts_raw, "core": dicts_core, "orm": dicts_orm, "dao": dicts_dao},
    "count": {"raw": count_raw, "core": count_core, "orm": count_orm, "dao": count_dao},
    "update by PK": {"raw": update_raw, "core": update_core, "orm": update_orm, "dao": update_dao},
    "delete by PK": {"raw": delete_raw, "core": delete_core, "orm": delete_orm, "dao": delete_dao},
}
