"""Overhead of the slow-query events on a tight primary-key lookup loop.

Runs the same loop on an engine with the kit's timing events and on a plain
SQLAlchemy engine, interleaved, in one process, and prints the best-of-N ratio.

    .venv/bin/python -m bench.bench_events [--rounds 7] [--lookups 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pkg.database.engine import new_async_engine

URLS = {
    "postgresql": os.environ.get("KIT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("KIT_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
    "sqlite": "sqlite+aiosqlite:////tmp/kit_bench_events.db",
}
metadata = MetaData()
items = Table(
    "bench_event_items", metadata, Column("id", Integer, primary_key=True), Column("name", String(40))
)


async def prepare(engine: AsyncEngine, rows: int) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        await conn.execute(items.insert(), [{"id": i, "name": f"n{i}"} for i in range(1, rows + 1)])


async def lookup_loop(engine: AsyncEngine, lookups: int, rows: int) -> float:
    stmt = select(items.c.name).where(items.c.id == 0)
    started = time.perf_counter()
    async with engine.connect() as conn:
        for i in range(lookups):
            await conn.execute(stmt, {"id_1": i % rows + 1})
    return time.perf_counter() - started


async def measure(name: str, rounds: int, lookups: int) -> tuple[float, float, float]:
    """Paired rounds in alternating order; returns best plain, best monitored, median ratio."""
    rows = 1000
    monitored = new_async_engine(URLS[name], slow_query_threshold=0.5)
    plain = create_async_engine(URLS[name])
    try:
        await prepare(plain, rows)
        plain_times: list[float] = []
        monitored_times: list[float] = []
        for i in range(rounds):
            pair = [(plain, plain_times), (monitored, monitored_times)]
            for engine, times in pair if i % 2 == 0 else reversed(pair):
                times.append(await lookup_loop(engine, lookups, rows))
        async with plain.begin() as conn:
            await conn.run_sync(metadata.drop_all)
    finally:
        await monitored.dispose()
        await plain.dispose()
    ratios = sorted(m / p for p, m in zip(plain_times, monitored_times, strict=True))
    return min(plain_times), min(monitored_times), ratios[len(ratios) // 2]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--lookups", type=int, default=3000)
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    args = parser.parse_args()
    print(f"{'backend':<11} {'plain ops/s':>12} {'events ops/s':>13} {'overhead (median)':>18}")
    for name in args.backends.split(","):
        plain, monitored, ratio = await measure(name, args.rounds, args.lookups)
        overhead = (ratio - 1.0) * 100.0
        print(
            f"{name:<11} {args.lookups / plain:>12.0f} {args.lookups / monitored:>13.0f} {overhead:>17.1f}%"
        )


if __name__ == "__main__":
    asyncio.run(main())
