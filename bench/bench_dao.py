"""DAO vs hand-written SQLAlchemy ORM / Core vs the raw driver, on each backend, in one run.

    .venv/bin/python -m bench.bench_dao [--backends sqlite,postgresql,mysql] [--ops 1000]

Prints ops/s per approach and the ratios the issue targets (DAO/ORM, DAO/Core, DAO/raw),
plus bulk insert (20k rows), 50 tasks over a pool of 10, and offset vs keyset at row 50k.
Each backend uses its own ``kit_bench`` database (recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.raw import connect_raw
from bench.workloads import (
    RAW_INSERT,
    WORKLOADS,
    Ctx,
    Op,
    T,
    get_core,
    get_dao,
    get_orm,
    get_raw,
    raw_args,
    row,
)
from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import new_async_engine, new_async_session_maker

SERVERS = {
    "postgresql": os.environ.get("KIT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("KIT_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
    "sqlite": "sqlite+aiosqlite:////tmp/kit_bench_dao.db",
}
APPROACHES = ("raw", "core", "orm", "dao")
BULK_ROWS = 20_000
POOL = 10
Result = dict[str, dict[str, float]]


async def bench_url(backend: str) -> str:
    """Recreate ``kit_bench`` on the server (a file for SQLite) and return its URL."""
    url = make_url(SERVERS[backend])
    if backend == "sqlite":
        with contextlib.suppress(FileNotFoundError):
            os.remove(url.database or "")
        return str(url)
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    q = '"' if backend == "postgresql" else "`"
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {q}kit_bench{q}"))
        await conn.execute(text(f"CREATE DATABASE {q}kit_bench{q}"))
    await admin.dispose()
    return url.set(database="kit_bench").render_as_string(hide_password=False)


async def timed(ctx: Ctx, op: Op, n: int, start: int = 0) -> float:
    began = time.perf_counter()
    for i in range(start, start + n):
        await op(ctx, i)
    return n / (time.perf_counter() - began)


async def run_workload(ctx: Ctx, ops: dict[str, Op], n: int, rounds: int) -> dict[str, float]:
    """Best ops/s of ``rounds`` interleaved rounds per approach (after a warm-up)."""
    best = dict.fromkeys(ops, 0.0)
    for op in ops.values():
        await timed(ctx, op, min(50, n), start=rounds * n)
    for r in range(rounds):
        order = list(ops) if r % 2 == 0 else list(reversed(ops))
        for name in order:
            best[name] = max(best[name], await timed(ctx, ops[name], n, start=r * n))
    return best


async def bulk(ctx: Ctx, rounds: int) -> dict[str, float]:
    async def raw(tag: str) -> None:
        await ctx.raw.executemany(RAW_INSERT, [raw_args(ctx, row(tag, i)) for i in range(BULK_ROWS)])

    async def core(tag: str) -> None:
        async with ctx.engine.begin() as conn:
            await conn.execute(insert(T), [row(tag, i) for i in range(BULK_ROWS)])

    async def orm(tag: str) -> None:
        async with ctx.maker() as s:
            await s.execute(insert(User), [row(tag, i) for i in range(BULK_ROWS)])
            await s.commit()

    async def dao(tag: str) -> None:
        await ctx.dao.create_many(row(tag, i) for i in range(BULK_ROWS))

    fns = {"raw": raw, "core": core, "orm": orm, "dao": dao}
    best = dict.fromkeys(fns, 0.0)
    for r in range(rounds):
        for name, fn in fns.items():
            began = time.perf_counter()
            await fn(f"b{r}{name}")
            best[name] = max(best[name], BULK_ROWS / (time.perf_counter() - began))
    return best


async def concurrent(ctx: Ctx, per_task: int) -> dict[str, float]:
    ops = {"raw": get_raw, "core": get_core, "orm": get_orm, "dao": get_dao}
    out = {}
    for name, op in ops.items():
        began = time.perf_counter()
        await asyncio.gather(*(timed(ctx, op, per_task, start=t * per_task) for t in range(50)))
        out[name] = 50 * per_task / (time.perf_counter() - began)
    return out


async def deep_pages(ctx: Ctx, n: int) -> dict[str, float]:
    query = ctx.dao.query().order_by("id")
    async with ctx.engine.connect() as conn:
        at = (await conn.execute(select(T.c.id).order_by(T.c.id).offset(49_999).limit(1))).scalar_one()
    _, cursor_for = query.keyset_query(50)
    cursor = cursor_for(SimpleNamespace(id=at))

    async def offset(c: Ctx, i: int) -> None:
        await query.offset(50_000).limit(50).all()

    async def keyset(c: Ctx, i: int) -> None:
        page = await query.keyset(50, cursor)
        assert page.items[0].id > at

    async def raw_offset(c: Ctx, i: int) -> None:
        await c.raw.fetch("SELECT id, username FROM users ORDER BY id LIMIT 50 OFFSET 50000")

    async def raw_keyset(c: Ctx, i: int) -> None:
        await c.raw.fetch("SELECT id, username FROM users WHERE id > ? ORDER BY id LIMIT 50", at)

    fns = {"offset": offset, "keyset": keyset, "raw_offset": raw_offset, "raw_keyset": raw_keyset}
    return await run_workload(ctx, fns, n, 4)


async def prepare(backend: str) -> Ctx:
    url = await bench_url(backend)
    engine = new_async_engine(
        url, pool_size=POOL, max_overflow=0, pool_pre_ping=False, slow_query_threshold=None
    )
    async with engine.begin() as conn:
        await conn.run_sync(User.metadata.create_all)
    maker = new_async_session_maker(engine)
    raw = await connect_raw(url, POOL)
    return Ctx(engine, maker, UserDao(session_provider=maker), raw, backend)


SEED_ROWS = 60_000
ANALYZE = {"postgresql": "ANALYZE users", "mysql": "ANALYZE TABLE users", "sqlite": "ANALYZE"}


async def reseed(ctx: Ctx) -> None:
    """A fixed 60k-row table (deep pages need 50k), a page index, fresh planner stats."""
    async with ctx.engine.begin() as conn:
        await conn.execute(text("DELETE FROM users"))
        await conn.execute(text("CREATE INDEX ix_bench_active_created ON users (is_active, created_at)"))
    await ctx.dao.create_many(row("seed", i) for i in range(SEED_ROWS))
    async with ctx.engine.begin() as conn:
        await conn.execute(text(ANALYZE[ctx.backend]))
        ctx.ids = list((await conn.execute(select(T.c.id).limit(20_000))).scalars())


async def spare_ids(ctx: Ctx, n: int) -> None:
    for name in APPROACHES:
        await ctx.dao.create_many(row(f"x{name}", i) for i in range(n))
        rows = await ctx.dao.query().filter(username__startswith=f"x{name}").dicts()
        ctx.spare[name] = [r["id"] for r in rows]


async def bench_backend(backend: str, ops: int, rounds: int) -> Result:
    ctx = await prepare(backend)
    results: Result = {}
    try:
        results["bulk insert 20k rows (rows/s)"] = await bulk(ctx, min(rounds, 3))
        await reseed(ctx)
        await spare_ids(ctx, ops * rounds + 100)
        for name, fns in WORKLOADS.items():
            n = max(ops // 4, 10) if "page" in name or "dicts" in name else ops
            results[name] = await run_workload(ctx, fns, n, rounds)
        results["50 tasks / pool of 10 (get by PK)"] = await concurrent(ctx, max(ops // 50, 10))
        results["deep page at row 50k"] = await deep_pages(ctx, max(ops // 5, 20))
    finally:
        await ctx.raw.close()
        await ctx.engine.dispose()
    return results


def report(backend: str, results: Result) -> str:
    lines = [
        f"\n### {backend}\n",
        "| workload | raw | core | orm | dao | dao/orm | dao/core | dao/raw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if "offset" in r:
            ratio, raw_ratio = r["keyset"] / r["offset"], r["raw_keyset"] / r["raw_offset"]
            lines.append(
                f"| {name} | offset {r['raw_offset']:.0f} / keyset {r['raw_keyset']:.0f} "
                f"({raw_ratio:.1f}x) | | | offset {r['offset']:.0f} / keyset "
                f"{r['keyset']:.0f} | keyset/offset {ratio:.1f}x | | |"
            )
            continue
        d = r["dao"]
        lines.append(
            f"| {name} | {r['raw']:.0f} | {r['core']:.0f} | {r['orm']:.0f} | {d:.0f} | "
            f"{d / r['orm']:.2f} | {d / r['core']:.2f} | {d / r['raw']:.2f} |"
        )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="postgresql,mysql,sqlite")
    parser.add_argument("--ops", type=int, default=150, help="operations per approach per round")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds; best is kept")
    args = parser.parse_args(argv)
    for backend in args.backends.split(","):
        results = await bench_backend(backend, args.ops, args.rounds)
        print(report(backend, results), flush=True)


def run(argv: list[str] | None = None) -> Any:
    return asyncio.run(main(argv))


if __name__ == "__main__":
    run()
