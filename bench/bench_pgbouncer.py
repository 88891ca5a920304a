"""Cost of ``pgbouncer="transaction"``: the same DAO work directly on PostgreSQL and through
PgBouncer (transaction pooling, 3 server connections; ``scripts/services.sh`` starts it).

    .venv/bin/python -m bench.bench_pgbouncer [--rounds 7] [--calls 300]

Three setups, measured in interleaved rounds (robust to a shared, noisy machine):
``direct`` (5432, the default settings: AUTOCOMMIT reads, cached named statements),
``direct+mode`` (5432 with ``pgbouncer="transaction"``: the mode's own cost) and
``pgbouncer`` (6432 with ``pgbouncer="transaction"``: the production setup). Workloads:
``get`` (one task, primary-key lookups: latency) and ``mixed`` (10 tasks on a pool of 10,
get / page / count / update / keyset: throughput). Prints median calls/s per setup.
Uses its own ``kit_bench_pgb`` database (recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import new_async_engine, new_async_session_maker

DIRECT = make_url(os.environ.get("KIT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
POOLED = make_url(
    os.environ.get("KIT_BENCH_PGBOUNCER_URL", "postgresql+asyncpg://postgres@127.0.0.1:6432/test")
)
DB = "kit_bench_pgb"
ROWS = 200
SETUPS: dict[str, tuple[URL, str | None]] = {
    "direct": (DIRECT.set(database=DB), None),
    "direct+mode": (DIRECT.set(database=DB), "transaction"),
    "pgbouncer": (POOLED.set(database=DB), "transaction"),
}


async def _admin(sql: str) -> None:
    engine = create_async_engine(DIRECT, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


async def _seed(engine: AsyncEngine) -> UserDao:
    async with engine.begin() as conn:
        await conn.run_sync(User.metadata.drop_all)
        await conn.run_sync(User.metadata.create_all)
    users = UserDao(session_provider=new_async_session_maker(engine), cursor_secret="bench")
    await users.create_many({"username": f"u{i}", "email": f"u{i}@x.io"} for i in range(ROWS))
    return users


async def _get(users: UserDao, ids: list[int], calls: int) -> None:
    for i in range(calls):
        await users.get(ids[i % len(ids)])


async def _mixed_task(users: UserDao, own: int, ids: list[int], calls: int) -> None:
    cursor: str | None = None
    for i in range(calls):
        match i % 5:
            case 0:
                await users.get(ids[i % len(ids)])
            case 1:
                await users.query().order_by("id").page(1 + i % 3, 10)
            case 2:
                await users.count(is_active=True)
            case 3:
                await users.update_by_id(own, username=f"t{i}")
            case _:
                cursor = (await users.query().order_by("id").keyset(10, cursor)).next_cursor


async def _mixed(users: UserDao, ids: list[int], calls: int) -> None:
    await asyncio.gather(*(_mixed_task(users, ids[t], ids, calls // 10) for t in range(10)))


WORKLOADS: dict[str, Callable[[UserDao, list[int], int], Awaitable[None]]] = {"get": _get, "mixed": _mixed}


async def _timed(work: Awaitable[None], calls: int) -> float:
    started = time.perf_counter()
    await work
    return calls / (time.perf_counter() - started)


async def main(rounds: int, calls: int) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{DB}"')
    engines = {
        name: new_async_engine(url, pool_size=10, max_overflow=0, slow_query_threshold=None, pgbouncer=mode)
        for name, (url, mode) in SETUPS.items()
    }
    try:
        users = {
            name: UserDao(new_async_session_maker(e), cursor_secret="bench") for name, e in engines.items()
        }
        ids = [u.id for u in await (await _seed(engines["direct"])).query().order_by("id").all()]
        rates: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds + 1):  # the first round warms every pool and is dropped
            for workload, run in WORKLOADS.items():
                for name in SETUPS:
                    rate = await _timed(run(users[name], ids, calls), calls)
                    rates.setdefault((workload, name), []).append(rate)
        _report(rates, rounds, calls)
    finally:
        for engine in engines.values():
            await engine.dispose()
        await _admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


def _report(rates: dict[tuple[str, str], list[float]], rounds: int, calls: int) -> None:
    print(f"median calls/s over {rounds} rounds of {calls} calls (first round dropped)")
    print("| workload | " + " | ".join(SETUPS) + " | mode cost (direct+mode/direct) | pgbouncer/direct |")
    print("| --- |" + " ---: |" * (len(SETUPS) + 2))
    for workload in WORKLOADS:
        med = {name: statistics.median(rates[(workload, name)][1:]) for name in SETUPS}
        cells = " | ".join(f"{med[n]:,.0f}" for n in SETUPS)
        mode = med["direct+mode"] / med["direct"]
        pooled = med["pgbouncer"] / med["direct"]
        print(f"| {workload} | {cells} | {mode:.2f} | {pooled:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.calls))
