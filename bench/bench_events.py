"""Overhead of the slow-query events on a tight primary-key lookup loop.

Runs the same loop, interleaved in one process, on: a plain SQLAlchemy engine; a plain
engine with the kit's timing hook ("events", what new_async_engine attaches); one with
the cursor-event variant; and a whole kit engine (timing, leak tracking, cleanup,
pre-ping). Prints each one's median time overhead against plain.

    .venv/bin/python -m bench.bench_events [--rounds 60] [--lookups 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pkg.database import attach_query_monitor, new_async_engine

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


def engines(url: str) -> dict[str, AsyncEngine]:
    """Plain SQLAlchemy, the kit's default timing hook, and the cursor-event variant."""
    dialect, cursor = create_async_engine(url), create_async_engine(url)
    attach_query_monitor(dialect.sync_engine, 0.5, via="dialect")
    attach_query_monitor(cursor.sync_engine, 0.5, via="cursor")
    return {
        "plain": create_async_engine(url),
        "events": dialect,
        "cursor": cursor,
        "kit": new_async_engine(url, slow_query_threshold=0.5),
    }


async def measure(name: str, rounds: int, lookups: int) -> dict[str, tuple[float, float]]:
    """Interleaved rounds, order alternating; per variant: median ops/s, median time ratio."""
    rows = 1000
    made = engines(URLS[name])
    times: dict[str, list[float]] = {key: [] for key in made}
    try:
        await prepare(made["plain"], rows)
        for i in range(rounds):
            order = list(made.items())
            for key, engine in order if i % 2 == 0 else reversed(order):
                times[key].append(await lookup_loop(engine, lookups, rows))
        async with made["plain"].begin() as conn:
            await conn.run_sync(metadata.drop_all)
    finally:
        for engine in made.values():
            await engine.dispose()
    out = {}
    for key, values in times.items():
        ratios = [v / p for p, v in zip(times["plain"], values, strict=True)]
        out[key] = (lookups / statistics.median(values), statistics.median(ratios))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    args = parser.parse_args()
    print(f"{'backend':<11} {'plain ops/s':>12} {'events':>8} {'cursor-events':>14} {'whole kit engine':>17}")
    for name in args.backends.split(","):
        result = await measure(name, args.rounds, args.lookups)
        pct = {key: (ratio - 1.0) * 100.0 for key, (_, ratio) in result.items()}
        print(
            f"{name:<11} {result['plain'][0]:>12.0f} {pct['events']:>7.1f}% "
            f"{pct['cursor']:>13.1f}% {pct['kit']:>16.1f}%"
        )


if __name__ == "__main__":
    asyncio.run(main())
