"""Overhead of metrics on the checkout-and-query loop: each op checks a connection out of
the pool, runs one primary-key lookup and checks it back in (a request handler's shape).

One kit engine per backend; interleaved rounds (order shuffled per round) of the same loop with
metrics off (no hook: nothing attached), off again (the control: what two identical variants
differ by, i.e. the noise and any position bias left), with the Prometheus exporter, and with
the OpenTelemetry exporter (SDK meter provider, in-memory reader). Prints ops/s with metrics
off and each variant's median per-round ratio against off, of wall time and of this
process's CPU time. The CPU ratio is the steadier one on a shared machine, and an upper
bound of the wall-time overhead (the metrics cost is all CPU in this process; the wall
time also holds the server's work and the network). Each ratio comes with its spread
(25th-75th percentile of the rounds) and the load average is printed before and after: on a
shared machine a round's noise is larger than the metrics cost, hence many short rounds.
The loop uses the public API only.

``--path`` also times each exporter's hot path alone, with no database: the sink its
``bind_engine`` returns, told of one checkout, one statement and one checkin per op, in CPU
microseconds per op; steady where the loop is noisy. (It leaves out the engine side: pool
event dispatch, the queue timing and the per-connection bookkeeping, common to every hook.)

    .venv/bin/python -m bench.bench_metrics [--rounds 60] [--ops 200] [--path]
        [--backends sqlite,postgresql,mysql]

``--only off|prometheus|otel --backends B --ops N`` runs one untimed loop instead, for counting
instructions, which no other engineer's load disturbs: the loop's cost per op is the
difference of two counts divided by the difference of ``N``::

    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        .venv/bin/python -m bench.bench_metrics --only prometheus --backends mysql --ops 1500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from sqlalchemy import Table, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.lookup_table import ROWS, bench_urls, lookup_table, prepare
from pkg.database import new_async_engine
from pkg.database.metrics import (
    MetricsHook,
    add_metrics_hook,
    install_otel,
    install_prometheus,
    reset_metrics,
    reset_metrics_hooks,
)

URLS = bench_urls("kit_bench_metrics.db")
items = lookup_table("bench_metric_items")
metadata = items.metadata


async def checkout_loop(engine: AsyncEngine, ops: int, table: Table = items) -> tuple[float, float]:
    """Wall time and this process's CPU time of ``ops`` checkout-and-query operations."""
    stmt = select(table.c.name).where(table.c.id == 0)
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
    return {"off": None, "control": None, "prometheus": prometheus, "otel": otel}


Result = tuple[float, float, float, float]  # ops/s, wall ratio, CPU ratio, CPU ratio IQR


async def measure(name: str, rounds: int, ops: int) -> dict[str, Result]:
    engine = new_async_engine(URLS[name], pool_size=5, slow_query_threshold=0.5, metrics_name="bench")
    switch = variants()
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in switch}
    try:
        await prepare(engine, items)
        await checkout_loop(engine, ops)  # warm up
        shuffler = random.Random(14)  # fixed seed: the same orders on every run
        for _ in range(rounds):
            order = list(switch.items())
            shuffler.shuffle(order)  # alternating orders left a position bias of ~2 %
            for key, hook in order:
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
    return {key: summarise(values, times["off"], ops) for key, values in times.items()}


def summarise(values: list[tuple[float, float]], off: list[tuple[float, float]], ops: int) -> Result:
    wall = [v[0] / o[0] for o, v in zip(off, values, strict=True)]
    cpu = [v[1] / o[1] for o, v in zip(off, values, strict=True)]
    quartiles = statistics.quantiles(cpu, n=4)
    ops_s = ops / statistics.median(v[0] for v in values)
    return ops_s, statistics.median(wall), statistics.median(cpu), quartiles[2] - quartiles[0]


def sink_cost(rounds: int, ops: int) -> dict[str, float]:
    """CPU microseconds per op of each exporter's hot path alone (no database): the sink its
    ``bind_engine`` gives, told of one checkout, one statement and one checkin per op. Also
    OpenTelemetry on a provider without exemplars (``OTEL_METRICS_EXEMPLAR_FILTER=always_off``)."""
    results: dict[str, list[float]] = {}
    hooks = variants()
    quiet = MeterProvider(metric_readers=[InMemoryMetricReader()], exemplar_filter=AlwaysOffExemplarFilter())
    hooks["otel, no exemplars"] = install_otel(quiet)
    for key, hook in hooks.items():
        if hook is None:  # off and the control
            continue
        sink = getattr(hook, "bind_engine")("sink-bench", "sqlite")  # noqa: B009 - on the hook protocol
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(ops):
                sink.checked_out(0.00001)
                sink.query("SELECT", "ok", 0.0003, False, None)
                sink.checked_in(0.0005)
            metered = time.process_time() - started
            started = time.process_time()
            for _ in range(ops):
                pass
            results.setdefault(key, []).append((metered - (time.process_time() - started)) / ops * 1e6)
    reset_metrics()
    return {key: statistics.median(values) for key, values in results.items()}


async def only(name: str, variant: str, ops: int) -> None:
    """One loop of ``ops`` ops with one variant and nothing timed: to count this process's
    instructions (valgrind) at two values of ``ops``, whose difference is the loop's alone.
    Its own table and SQLite file, so several may run at once."""
    own = f"bench_metric_only_{os.getpid()}"
    table = lookup_table(own)
    url = bench_urls(f"{own}.db")[name]
    engine = new_async_engine(url, pool_size=5, slow_query_threshold=0.5, metrics_name="bench")
    hook = variants()[variant]
    try:
        await prepare(engine, table)
        await checkout_loop(engine, 20, table)  # warm up, unmetered (as in the timed rounds)
        if hook is not None:
            add_metrics_hook(hook)
        await checkout_loop(engine, ops, table)
        reset_metrics()
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.drop_all)
    finally:
        reset_metrics()
        await engine.dispose()
        if name == "sqlite":
            os.remove(str(make_url(url).database))


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def report(name: str, r: dict[str, Result], pct: Callable[[float], float]) -> None:
    (_, pw, pc, pi), (_, ow, oc, oi), (_, _, cc, ci) = r["prometheus"], r["otel"], r["control"]
    print(
        f"{name:<11} {r['off'][0]:>9.0f} {pct(cc):>8.1f}% {ci * 100:>6.1f} {pct(pw):>9.1f}% {pct(pc):>8.1f}% "
        f"{pi * 100:>6.1f} {pct(ow):>9.1f}% {pct(oc):>8.1f}% {oi * 100:>6.1f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--path", action="store_true", help="also time the metrics path alone")
    parser.add_argument("--only", choices=["off", "prometheus", "otel"], help="one untimed loop (valgrind)")
    args = parser.parse_args()
    if args.only:
        await only(args.backends, args.only, args.ops)
        return
    print(load())
    print("backend     off ops/s  ctrl cpu  (IQR)  prom wall  prom cpu  (IQR)  otel wall  otel cpu  (IQR)")
    for name in args.backends.split(","):
        report(name, await measure(name, args.rounds, args.ops), lambda ratio: (ratio - 1.0) * 100.0)
    if args.path:
        print("exporter hot path alone, CPU us per op:")
        for key, cost in sink_cost(args.rounds, 5000).items():
            print(f"  {key:<19} {cost:7.2f}")
    print(load())


if __name__ == "__main__":
    asyncio.run(main())
