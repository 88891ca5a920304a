"""Overhead of metrics on the checkout-and-query loop: each op checks a connection out of
the pool, runs one primary-key lookup and checks it back in (a request handler's shape).

One kit engine per backend; interleaved rounds (order alternating) of the same loop with
metrics off (no hook: nothing attached), with the Prometheus exporter, and with the
OpenTelemetry exporter (SDK meter provider, in-memory reader). Prints ops/s with metrics
off and each exporter's median per-round ratio against off, of wall time and of this
process's CPU time. The CPU ratio is the steadier one on a shared machine, and an upper
bound of the wall-time overhead (the metrics cost is all CPU in this process; the wall
time also holds the server's work and the network). Public API only.

    .venv/bin/python -m bench.bench_metrics [--rounds 40] [--ops 400] [--backends sqlite,postgresql,mysql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database import new_async_engine
from pkg.database.metrics import (
    MetricsHook,
    add_metrics_hook,
    install_otel,
    install_prometheus,
    reset_metrics,
    reset_metrics_hooks,
)

URLS = {
    "postgresql": os.environ.get("KIT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("KIT_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
    "sqlite": "sqlite+aiosqlite:////tmp/kit_bench_metrics.db",
}
ROWS = 1000
metadata = MetaData()
items = Table(
    "bench_metric_items", metadata, Column("id", Integer, primary_key=True), Column("name", String(40))
)


async def prepare(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        await conn.execute(items.insert(), [{"id": i, "name": f"n{i}"} for i in range(1, ROWS + 1)])


async def checkout_loop(engine: AsyncEngine, ops: int) -> tuple[float, float]:
    """Wall time and this process's CPU time of ``ops`` checkout-and-query operations."""
    stmt = select(items.c.name).where(items.c.id == 0)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(ops):
        async with engine.connect() as conn:
            await conn.execute(stmt, {"id_1": i % ROWS + 1})
    return time.perf_counter() - started, time.process_time() - cpu


def variants() -> dict[str, MetricsHook | None]:
    """Each variant's hook (None: metrics off, no hook at all); built once, switched per round."""
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    prometheus, otel = install_prometheus(CollectorRegistry()), install_otel(provider)
    reset_metrics_hooks()  # installed once for their instruments; added back per round below
    return {"off": None, "prometheus": prometheus, "otel": otel}


async def measure(name: str, rounds: int, ops: int) -> dict[str, tuple[float, float, float]]:
    engine = new_async_engine(URLS[name], pool_size=5, slow_query_threshold=0.5, metrics_name="bench")
    switch = variants()
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in switch}
    try:
        await prepare(engine)
        await checkout_loop(engine, ops)  # warm up
        for i in range(rounds):
            order = list(switch.items())
            for key, hook in order if i % 2 == 0 else reversed(order):
                reset_metrics_hooks()
                if hook is not None:
                    add_metrics_hook(hook)
                times[key].append(await checkout_loop(engine, ops))
        reset_metrics()
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
    finally:
        reset_metrics()
        await engine.dispose()
    out: dict[str, tuple[float, float, float]] = {}
    for key, values in times.items():
        wall = [v[0] / off[0] for off, v in zip(times["off"], values, strict=True)]
        cpu = [v[1] / off[1] for off, v in zip(times["off"], values, strict=True)]
        ops_s = ops / statistics.median(v[0] for v in values)
        out[key] = (ops_s, statistics.median(wall), statistics.median(cpu))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    args = parser.parse_args()
    print("backend      off ops/s  prom wall  prom cpu  otel wall  otel cpu")
    for name in args.backends.split(","):
        r = await measure(name, args.rounds, args.ops)
        pct = {key: ((w - 1.0) * 100.0, (c - 1.0) * 100.0) for key, (_, w, c) in r.items()}
        (pw, pc), (ow, oc) = pct["prometheus"], pct["otel"]
        print(f"{name:<11} {r['off'][0]:>10.0f} {pw:>9.1f}% {pc:>8.1f}% {ow:>9.1f}% {oc:>8.1f}%")


if __name__ == "__main__":
    asyncio.run(main())
