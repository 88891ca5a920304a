"""The Prometheus single-process store stays exact without a lock on its hot path, and a pool
that is not the kit's queue pool is measured through SQLAlchemy's listeners instead."""

from __future__ import annotations

import random
import threading
from bisect import bisect_left

from sqlalchemy import text
from sqlalchemy.pool import AsyncAdaptedQueuePool

from pkg.database import new_async_engine
from pkg.database.metrics.prom_series import FOLD_AT, QUERY_BUCKETS, Histogram, LocalSeries
from pkg.database.pool import KitAsyncQueuePool
from tests.conftest import Backend
from tests.pkg.database.metrics.conftest import Prom


def _rows(series: LocalSeries) -> dict[tuple[str, tuple[str, ...]], object]:
    return {(family, labels): value for family, labels, value in series.samples()}


def test_a_fold_counts_as_one_observation_at_a_time() -> None:
    shuffler = random.Random(14)
    values = [shuffler.choice((*QUERY_BUCKETS, 0.0, 20.0)) for _ in range(300)]  # bounds exactly
    values += [shuffler.uniform(0.0, 12.0) for _ in range(FOLD_AT * 2)]
    expected = [0] * (len(QUERY_BUCKETS) + 1)
    for value in values:
        expected[bisect_left(QUERY_BUCKETS, value)] += 1  # first bound >= value, as le means
    histogram = Histogram(QUERY_BUCKETS)
    for start in range(0, len(values), 700):  # several folds of uneven batches
        histogram.pending.extend(values[start : start + 700])
        histogram.fold()
    assert histogram.counts == expected and not histogram.pending
    assert abs(histogram.total - sum(values)) < 1e-6


def test_zero_waits_and_uses_are_told_apart() -> None:
    series = LocalSeries("zero")
    series.created(adopted=False)
    series.checked_out(0.0)
    rows = _rows(series)
    assert rows["pool_connections", ("used",)] == 1 and rows["pool_connections", ("idle",)] == 0
    series.checked_in(0.0)
    rows = _rows(series)
    wait, use = rows["pool_wait_seconds", ()], rows["pool_use_seconds", ()]
    assert isinstance(wait, Histogram) and isinstance(use, Histogram)
    assert wait.counts[0] == use.counts[0] == 1 and wait.total == use.total == 0.0
    assert rows["pool_connections", ("used",)] == 0 and rows["pool_connections", ("idle",)] == 1


def test_threads_sharing_a_series_count_exactly_and_never_below_zero() -> None:
    series, threads, ops = LocalSeries("shared"), 4, 5000
    series.created(adopted=False)
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in range(ops):
            series.checked_out(0.0001)
            series.query("SELECT", "ok", 0.0002, False, None)
            series.checked_in(0.0003)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    scrapes = 0
    while any(worker.is_alive() for worker in workers) or scrapes == 0:
        used = _rows(series)["pool_connections", ("used",)]
        assert isinstance(used, int) and 0 <= used <= threads  # one consistent prefix of the events
        scrapes += 1
    for worker in workers:
        worker.join()
    rows = _rows(series)
    assert rows["pool_connections", ("used",)] == 0 and rows["pool_connections", ("idle",)] == 1
    for family in ("pool_wait_seconds", "pool_use_seconds"):
        histogram = rows[family, ()]
        assert isinstance(histogram, Histogram) and histogram.count() == threads * ops
    queries = rows["query_duration_seconds", ("SELECT", "ok")]
    assert isinstance(queries, Histogram) and queries.count() == threads * ops


async def test_the_kit_pool_reports_its_checkins_without_a_listener(backend: Backend, prom: Prom) -> None:
    engine = backend.engine(metrics_name=prom.engine)
    try:
        pool = engine.sync_engine.pool
        assert isinstance(pool, KitAsyncQueuePool)
        assert not [fn for fn in pool.dispatch.checkin if "EngineMetrics" in repr(fn)]
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            assert prom.connections("used") == 1
        assert prom.connections("used") == 0 and prom.count("kit_db_pool_use_seconds") == 1
    finally:
        await engine.dispose()


async def test_other_pools_are_measured_through_listeners(backend: Backend, prom: Prom) -> None:
    memory = new_async_engine("sqlite+aiosqlite://", metrics_name=prom.engine, slow_query_threshold=None)
    plain = backend.engine(metrics_name=prom.engine, poolclass=AsyncAdaptedQueuePool)  # a user's choice
    try:
        for engine in (memory, plain):
            assert [fn for fn in engine.sync_engine.pool.dispatch.checkin if "EngineMetrics" in repr(fn)]
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                assert prom.connections("used") == 1
            assert prom.connections("used") == 0
        assert prom.count("kit_db_pool_wait_seconds") == prom.count("kit_db_pool_use_seconds") == 2
        assert prom.connections("idle") == 2
    finally:
        await memory.dispose()
        await plain.dispose()


def test_a_forked_child_starts_with_no_connection_and_keeps_the_histograms() -> None:
    series = LocalSeries("forked")
    for _ in range(2):
        series.created(adopted=False)
        series.checked_out(0.001)
    series.after_fork()  # what the exporter's at-fork hook calls in the child
    rows = _rows(series)
    assert rows["pool_connections", ("used",)] == 0 and rows["pool_connections", ("idle",)] == 0
    series.created(adopted=False)
    series.checked_out(0.002)
    series.checked_in(0.003)
    rows = _rows(series)
    assert rows["pool_connections", ("used",)] == 0 and rows["pool_connections", ("idle",)] == 1
    wait = rows["pool_wait_seconds", ()]
    assert isinstance(wait, Histogram) and wait.count() == 3
