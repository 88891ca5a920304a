"""APP_METRICS: /metrics on the real web app, and one scrape summing several processes
(prometheus_client multiprocess mode) for 2 uvicorn workers and 2 Celery prefork children."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from celery import Celery
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from internal.config.load_config import load_settings
from pkg.database.errors import ConfigurationError
from tests.internal.conftest import service_env
from tests.internal.helpers.procs import Proc, free_port, wait_http_ready

POOL = {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "1"}  # 4 connections per process at most
PRIMARY = {"engine": "primary"}


def scrape(directory: Path, name: str, labels: dict[str, str] | None = None) -> float:
    """What one scrape reports for ``name`` over every process that wrote to ``directory``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry.get_sample_value(name, labels or PRIMARY) or 0.0


def per_process(directory: Path, name: str, tmp: Path) -> dict[int, float]:
    """The same sample, read from each process's own files alone."""
    files: dict[int, list[Path]] = defaultdict(list)
    for path in directory.glob("*.db"):
        files[int(path.stem.rsplit("_", 1)[1])].append(path)
    values = {}
    for pid, paths in files.items():
        alone = tmp / f"pid-{pid}"
        shutil.rmtree(alone, ignore_errors=True)
        alone.mkdir(parents=True)
        for path in paths:
            shutil.copy(path, alone / path.name)
        values[pid] = scrape(alone, name)
    return values


QUERIES = "kit_db_query_duration_seconds_count"
CHECKINS = "kit_db_pool_use_seconds_count"


def test_app_metrics_is_a_setting() -> None:
    assert load_settings(environ={}).app_metrics is False
    assert load_settings(environ={"APP_METRICS": "true"}).app_metrics is True
    with pytest.raises(ConfigurationError, match="APP_METRICS"):
        load_settings(environ={"APP_METRICS": "maybe"})


def test_metrics_are_served_only_when_switched_on(start_web, app_name, users_table, pg) -> None:
    off = start_web(f"{app_name}-off")
    assert httpx.get(f"{off.base_url}/metrics").status_code == 404
    on = start_web(app_name, APP_METRICS="true", **POOL)
    assert httpx.get(f"{on.base_url}/users/987654321").status_code == 404  # one query at least
    reply = httpx.get(f"{on.base_url}/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    body = reply.text
    assert 'kit_db_pool_max_connections{engine="primary"} 4.0' in body
    assert 'kit_db_query_duration_seconds_count{engine="primary",operation="SELECT",outcome="ok"}' in body
    assert pg.url.database not in body and "postgresql" not in body.lower()  # no URL, no server name
    assert "users" not in body  # no table names or SQL text


def _wait_both(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    """Poll ``check`` (server-side state: logs, metric files, requests) until it holds."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


async def test_two_uvicorn_workers_add_up_in_one_scrape(tmp_path: Path, pg, app_name, users_table) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    port = free_port()
    env = service_env(pg, app_name, APP_METRICS="true", PROMETHEUS_MULTIPROC_DIR=str(shared), **POOL)
    args = ["-m", "uvicorn", "internal.app:app", "--port", str(port), "--workers", "2"]
    proc = Proc(args, env, tmp_path / "uvicorn.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ready(proc, f"{base}/health")
        started = lambda: proc.output().count("web app ready") == 2  # noqa: E731
        await asyncio.to_thread(_wait_both, started, "both workers started")
        # each worker's startup (schema check) is done: what follows is the requests alone
        assert scrape(shared, "kit_db_pool_max_connections") == 8  # two live pools of 4
        before = per_process(shared, CHECKINS, tmp_path)
        sent = 0

        def both_served() -> bool:
            nonlocal sent
            httpx.get(f"{base}/users/987654321")  # a fresh connection: either worker accepts it
            sent += 1
            now = per_process(shared, CHECKINS, tmp_path)
            return len(now) == 2 and all(now[p] > before.get(p, 0.0) for p in now)

        await asyncio.to_thread(_wait_both, both_served, "requests served by both workers")
        mine = per_process(shared, CHECKINS, tmp_path)
        assert len(mine) == 2 and sum(mine.values()) - sum(before.values()) == sent  # one checkout each
        body = (await asyncio.to_thread(httpx.get, f"{base}/metrics")).text  # one worker sums both
        line = f'kit_db_pool_use_seconds_count{{engine="primary"}} {float(sum(mine.values()))}'
        assert line in body, body[-2000:]
        assert 'kit_db_pool_max_connections{engine="primary"} 8.0' in body
        proc.signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 20)
    finally:
        proc.stop()
    assert scrape(shared, "kit_db_pool_max_connections") == 0  # exited workers leave the live gauges
    assert scrape(shared, CHECKINS) >= sum(mine.values())  # counters stay counted


async def test_two_celery_children_add_up_in_one_scrape(
    tmp_path: Path, start_worker, app_name, task_queue, celery_client: Celery, users_table
) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    worker = start_worker(
        app_name, task_queue, APP_METRICS="true", PROMETHEUS_MULTIPROC_DIR=str(shared), **POOL
    )
    await asyncio.to_thread(
        _wait_both, lambda: scrape(shared, "kit_db_pool_max_connections") == 8, "two children's pools"
    )
    sent = 0
    while sent < 200:
        results = [
            celery_client.send_task("kit.recompute_profiles", kwargs={"batch_size": 50}, queue=task_queue)
            for _ in range(10)
        ]
        await asyncio.to_thread(lambda: [r.get(timeout=30) for r in results])  # noqa: B023
        sent += len(results)
        if len([v for v in per_process(shared, CHECKINS, tmp_path).values() if v > 0]) == 2:
            break
    counts = per_process(shared, CHECKINS, tmp_path)
    assert len(counts) == 2 and all(v > 0 for v in counts.values()), counts
    assert sum(counts.values()) == sent  # one session, one checkout per task
    assert scrape(shared, CHECKINS) == sent  # one scrape: both children
    assert scrape(shared, QUERIES, {**PRIMARY, "operation": "SELECT", "outcome": "ok"}) >= sent
    worker.signal(signal.SIGTERM)
    await asyncio.to_thread(worker.wait, 30)
    assert scrape(shared, "kit_db_pool_max_connections") == 0
