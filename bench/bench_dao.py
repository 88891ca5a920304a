"""The kit as shipped vs plain SQLAlchemy ORM vs Tortoise ORM vs the raw driver, in one run.

    .venv/bin/python -m bench.bench_dao [--backends postgresql,mysql,sqlite] [--ops 100] [--rounds 9]

Approaches (same table, data, pool of 10, interleaved rounds):

* ``raw``: the driver's own pool (asyncpg / aiomysql; one aiosqlite connection);
* ``orm``: hand-written SQLAlchemy ORM on ``create_async_engine`` with SQLAlchemy's defaults;
* ``tortoise``: Tortoise ORM (``pip install -e '.[bench]'``);
* ``kit``: ``BaseDao`` on ``new_async_engine(url, pool_size=10, max_overflow=0)``, nothing
  else overridden: pre-ping, slow-query events, leak tracking and cleanup as shipped.

Per workload: the median over rounds of ops/s and of client CPU per op
(``time.process_time``); then a counting pass through a loopback proxy (``bench/wire.py``)
gives the statements and round trips each approach sends per op (servers only).
Each backend uses its own ``kit_bench`` database (recreated; ``KIT_BENCH_DB`` names another).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bench import tortoise_app as tt
from bench.raw import connect_raw
from bench.wire import CountingProxy
from bench.workloads import APPROACHES, GETS, RAW_INSERT, WORKLOADS, Ctx, Op, T, raw_args, row
from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import new_async_engine, new_async_session_maker

DB = os.environ.get("KIT_BENCH_DB", "kit_bench")  # another name lets two runs share a server
SERVERS = {
    "postgresql": os.environ.get("KIT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("KIT_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
    "sqlite": f"sqlite+aiosqlite:////tmp/{DB}_dao.db",
}
BULK_ROWS = 10_000
POOL = 10
COUNT_OPS = 20


@dataclass
class Stat:
    """Median ops/s and client CPU microseconds per op; statements / round trips per op."""

    ops: float
    cpu_us: float
    statements: float | None = None
    round_trips: float | None = None


Result = dict[str, dict[str, Stat]]


async def bench_url(backend: str) -> str:
    """Recreate ``DB`` on the server (a file for SQLite) and return its URL."""
    url = make_url(SERVERS[backend])
    if backend == "sqlite":
        with contextlib.suppress(FileNotFoundError):
            os.remove(url.database or "")
        return str(url)
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    q = '"' if backend == "postgresql" else "`"
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {q}{DB}{q}"))
        await conn.execute(text(f"CREATE DATABASE {q}{DB}{q}"))
    await admin.dispose()
    return url.set(database=DB).render_as_string(hide_password=False)


async def build(url: str, backend: str) -> Ctx:
    """Every approach's client on ``url`` (Tortoise is global: started here too)."""
    kit = new_async_engine(url, pool_size=POOL, max_overflow=0)  # the kit's defaults
    plain = create_async_engine(url, pool_size=POOL, max_overflow=0)  # SQLAlchemy's defaults
    maker = async_sessionmaker(plain, expire_on_commit=False)
    raw = await connect_raw(url, POOL)
    await tt.start(url, POOL)
    return Ctx(kit, maker, UserDao(session_provider=new_async_session_maker(kit)), raw, backend)


async def close(ctx: Ctx) -> None:
    await tt.stop()
    await ctx.raw.close()
    await ctx.engine.dispose()
    bind = ctx.maker.kw["bind"]
    await bind.dispose()


Timed = Callable[[int], Awaitable[int]]  # runs one batch starting at op index i, returns ops done


async def rounds(fns: dict[str, Timed], rounds_: int) -> dict[str, Stat]:
    """Interleaved rounds (order alternating), after one warm-up; medians per approach."""
    for fn in fns.values():
        await fn(rounds_)
    speed: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds_):
        for name in list(fns) if r % 2 == 0 else list(reversed(fns)):
            began, cpu0 = time.perf_counter(), time.process_time()
            done = await fns[name](r)
            wall, used = time.perf_counter() - began, time.process_time() - cpu0
            speed[name].append(done / wall)
            cpu[name].append(used / done * 1e6)
    return {k: Stat(statistics.median(speed[k]), statistics.median(cpu[k])) for k in fns}


def sequential(ctx: Ctx, op: Op, n: int) -> Timed:
    async def batch(r: int) -> int:
        for i in range(r * n, r * n + n):
            await op(ctx, i)
        return n

    return batch


def tasks50(ctx: Ctx, op: Op, per_task: int) -> Timed:
    async def batch(r: int) -> int:
        async def one(t: int) -> None:
            base = (r * 50 + t) * per_task
            for i in range(base, base + per_task):
                await op(ctx, i)

        await asyncio.gather(*(one(t) for t in range(50)))
        return 50 * per_task

    return batch


def bulk_fns(ctx: Ctx) -> dict[str, Timed]:
    """10k rows in one transaction each way: executemany, ORM insert(), bulk_create, create_many."""

    def rows(tag: str) -> list[dict[str, Any]]:
        return [row(tag, i) for i in range(BULK_ROWS)]

    async def raw(r: int) -> int:
        await ctx.raw.executemany(RAW_INSERT, [raw_args(ctx, x) for x in rows(f"b{r}r")])
        return BULK_ROWS

    async def orm(r: int) -> int:
        async with ctx.maker() as s:
            await s.execute(insert(User), rows(f"b{r}o"))
            await s.commit()
        return BULK_ROWS

    async def tortoise(r: int) -> int:
        await tt.bulk(rows(f"b{r}t"))
        return BULK_ROWS

    async def kit(r: int) -> int:
        return await ctx.dao.create_many(rows(f"b{r}k"))

    fns: dict[str, Timed] = {"raw": raw, "orm": orm, "tortoise": tortoise, "kit": kit}
    if ctx.backend == "mysql":  # Tortoise's bulk_create on aiomysql (no asyncmy) fails: not measured
        del fns["tortoise"]
    return fns


async def deep_pages(ctx: Ctx, n: int, rounds_: int) -> dict[str, Stat]:
    """A page of 50 at row 50,000: OFFSET vs keyset cursor, through the kit and raw."""
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

    async def full_offset(c: Ctx, i: int) -> None:  # every column, as the kit's objects need
        await c.raw.fetch("SELECT * FROM users WHERE deleted_at IS NULL ORDER BY id LIMIT 50 OFFSET 50000")

    async def full_keyset(c: Ctx, i: int) -> None:
        await c.raw.fetch("SELECT * FROM users WHERE deleted_at IS NULL AND id > ? ORDER BY id LIMIT 51", at)

    ops = {"kit offset": offset, "kit keyset": keyset, "raw offset": raw_offset, "raw keyset": raw_keyset}
    ops |= {"raw offset, all columns": full_offset, "raw keyset, all columns": full_keyset}
    return await rounds({k: sequential(ctx, op, n) for k, op in ops.items()}, rounds_)


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
        rows = await ctx.dao.query().filter(username__startswith=f"x{name}").order_by("id").dicts()
        ctx.spare[name] = [r["id"] for r in rows]


async def count_statements(url: str, seeded: Ctx, first: int) -> dict[str, dict[str, tuple[float, float]]]:
    """Statements and round trips per op of each approach, through a counting proxy."""
    u = make_url(url)
    counted: dict[str, dict[str, tuple[float, float]]] = {}
    async with CountingProxy(u.host or "127.0.0.1", u.port or 0, seeded.backend) as proxy:
        proxied = u.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        ctx = await build(proxied, seeded.backend)
        ctx.ids, ctx.spare = seeded.ids, seeded.spare
        try:
            for name, fns in WORKLOADS.items():
                for approach, op in fns.items():
                    await op(ctx, first)  # connections open, statements prepared
                    proxy.counts.reset()
                    for i in range(first + 1, first + 1 + COUNT_OPS):
                        await op(ctx, i)
                    c = proxy.counts
                    counted.setdefault(name, {})[approach] = (
                        c.statements / COUNT_OPS,
                        c.round_trips / COUNT_OPS,
                    )
        finally:
            await close(ctx)
    return counted


async def bench_backend(backend: str, ops: int, rounds_: int, bulk_only: bool = False) -> Result:
    url = await bench_url(backend)
    ctx = await build(url, backend)
    async with ctx.engine.begin() as conn:
        await conn.run_sync(User.metadata.create_all)
    results: Result = {}
    try:
        results["bulk insert 10k (rows/s)"] = await rounds(
            bulk_fns(ctx), rounds_ if bulk_only else min(rounds_, 5)
        )
        if bulk_only:
            return results
        await reseed(ctx)
        await spare_ids(ctx, ops * (rounds_ + 1) + COUNT_OPS + 10)
        for name, fns in WORKLOADS.items():
            n = max(ops // 4, 10) if "page" in name else ops
            results[name] = await rounds({k: sequential(ctx, op, n) for k, op in fns.items()}, rounds_)
        per_task = max(ops // 50, 4)
        results["get by PK, 50 tasks, pool 10"] = await rounds(
            {k: tasks50(ctx, op, per_task) for k, op in GETS.items()}, rounds_
        )
        results["page at row 50k"] = await deep_pages(ctx, max(ops // 5, 20), rounds_)
    finally:
        await close(ctx)
    if backend != "sqlite":
        first = ops * (rounds_ + 1)
        for name, per in (await count_statements(url, ctx, first)).items():
            for approach, (stmts, trips) in per.items():
                results[name][approach].statements = stmts
                results[name][approach].round_trips = trips
    return results


def report(backend: str, results: Result) -> str:
    head = " | ".join(APPROACHES)
    lines = [
        f"\n### {backend}\n",
        f"ops/s (bulk: rows/s), ratio to raw in brackets:\n\n| workload | {head} | kit/orm | kit/tortoise |",
        "|---|" + "---:|" * (len(APPROACHES) + 2),
    ]
    bulk = results["bulk insert 10k (rows/s)"]
    summary = f"create_many / raw executemany: **{bulk['kit'].ops / bulk['raw'].ops:.2f}x**"
    deep = results.pop("page at row 50k", None)
    nan = Stat(float("nan"), float("nan"))
    for name, r in results.items():
        raw, kit = r["raw"].ops, r["kit"].ops
        cells = " | ".join(f"{r.get(a, nan).ops:,.0f} ({r.get(a, nan).ops / raw:.2f})" for a in APPROACHES)
        ratios = f"{kit / r['orm'].ops:.2f} | {kit / r.get('tortoise', nan).ops:.2f}"
        lines.append(f"| {name} | {cells} | {ratios} |")
    lines += ["", f"client CPU us per op:\n\n| workload | {head} |", "|---|" + "---:|" * len(APPROACHES)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{r.get(a, nan).cpu_us:,.0f}" for a in APPROACHES) + " |")
    if any(r["kit"].statements is not None for r in results.values()):
        lines += [
            "",
            f"statements / round trips per op (wire count):\n\n| workload | {head} |",
            "|---|" + "---:|" * len(APPROACHES),
        ]
        for name, r in results.items():
            if r["kit"].statements is not None:
                cells = " | ".join(f"{r[a].statements:g} / {r[a].round_trips:g}" for a in APPROACHES)
                lines.append(f"| {name} | {cells} |")
    if deep is not None:
        ko, kk = deep["kit offset"].ops, deep["kit keyset"].ops
        ro, rk = deep["raw offset"].ops, deep["raw keyset"].ops
        fo, fk = deep["raw offset, all columns"].ops, deep["raw keyset, all columns"].ops
        lines += [
            "",
            f"page of 50 at row 50,000 (pages/s): kit offset {ko:,.0f} / keyset {kk:,.0f} = "
            f"**{kk / ko:.1f}x**; raw offset {ro:,.0f} / keyset {rk:,.0f} = {rk / ro:.1f}x; raw with every "
            f"column (what the kit's objects carry): offset {fo:,.0f} / keyset {fk:,.0f} = {fk / fo:.1f}x",
        ]
    lines.append(summary)
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="postgresql,mysql,sqlite")
    parser.add_argument("--ops", type=int, default=100, help="operations per approach per round")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds; medians reported")
    parser.add_argument("--only", default="", help="comma list of workloads to run (default: all)")
    parser.add_argument("--bulk-only", action="store_true", help="only the bulk insert workload")
    args = parser.parse_args(argv)
    if args.only:
        keep = set(args.only.split(","))
        for name in list(WORKLOADS):
            if name not in keep:
                del WORKLOADS[name]
    for backend in args.backends.split(","):
        results = await bench_backend(backend, args.ops, args.rounds, args.bulk_only)
        print(report(backend, results), flush=True)


def run(argv: list[str] | None = None) -> Any:
    return asyncio.run(main(argv))


if __name__ == "__main__":
    run()
