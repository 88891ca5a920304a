"""Overhead of leak tracking (checkout owner capture + overdue timer) per checkout.

Each primary-key lookup takes its own connection from the pool (as a request handler
does), on two kit engines in one process: tracking on vs off (off keeps only the
bookkeeping forced shutdown needs). Rounds are interleaved; prints the median ratio.

    .venv/bin/python -m bench.bench_leak [--rounds 15] [--lookups 2000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.lookup_table import ROWS, bench_urls, lookup_table, prepare
from pkg.database import new_async_engine
from pkg.database.lifecycle import configure_leak_tracking

URLS = bench_urls("kit_bench_leak.db")
items = lookup_table("bench_leak_items")
metadata = items.metadata


async def lookup_loop(engine: AsyncEngine, lookups: int) -> float:
    """One checkout per lookup: the tracker's cost is paid every iteration."""
    stmt = select(items.c.name).where(items.c.id == 0)
    started = time.perf_counter()
    for i in range(lookups):
        async with engine.connect() as conn:
            await conn.execute(stmt, {"id_1": i % ROWS + 1})
    return time.perf_counter() - started


def _engine(name: str, tracking: bool) -> AsyncEngine:
    engine = new_async_engine(URLS[name], slow_query_threshold=None)
    configure_leak_tracking(enabled=tracking, threshold=30.0, engine=engine)
    return engine


async def measure(name: str, rounds: int, lookups: int) -> tuple[float, float, float]:
    """Best time off, best time on, median on/off ratio of paired rounds."""
    off, on = _engine(name, False), _engine(name, True)
    off_times: list[float] = []
    on_times: list[float] = []
    try:
        await prepare(off, items)
        for engine in (off, on):  # warm both pools
            await lookup_loop(engine, 100)
        for i in range(rounds):
            pair = [(off, off_times), (on, on_times)]
            for engine, times in pair if i % 2 == 0 else reversed(pair):
                times.append(await lookup_loop(engine, lookups))
        async with off.begin() as conn:
            await conn.run_sync(metadata.drop_all)
    finally:
        await off.dispose()
        await on.dispose()
    ratios = sorted(n / f for f, n in zip(off_times, on_times, strict=True))
    return min(off_times), min(on_times), ratios[len(ratios) // 2]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{'backend':<11} {'off ops/s':>10} {'on ops/s':>10} {'on/off (median)':>16} {'per checkout':>13}")
    for name in args.backends.split(","):
        off, on, ratio = await measure(name, args.rounds, args.lookups)
        per_checkout_us = (on - off) / args.lookups * 1e6
        print(
            f"{name:<11} {args.lookups / off:>10.0f} {args.lookups / on:>10.0f} "
            f"{ratio:>16.3f} {per_checkout_us:>10.1f} us"
        )


if __name__ == "__main__":
    asyncio.run(main())
