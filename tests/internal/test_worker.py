"""The real Celery worker (prefork, concurrency 2) on Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid

import pytest
from celery import Celery

from tests.conftest import Backend
from tests.internal.helpers.pg import (
    ConnectionSampler,
    fetch,
    sleeping_backends,
    terminate,
    wait_no_connections,
)
from tests.internal.helpers.procs import child_pids, pid_owning_port

pytestmark = pytest.mark.slow

POOL_SIZE, MAX_OVERFLOW, PROCESSES = 2, 1, 2
LOOP_ERRORS = ("attached to a different loop", "Event loop is closed", "different event loop")


def _worker_env() -> dict[str, str]:
    return {"DB_POOL_SIZE": str(POOL_SIZE), "DB_MAX_OVERFLOW": str(MAX_OVERFLOW)}


async def _count_domain(pg: Backend, domain: str) -> int:
    rows = await fetch(pg.url, "SELECT count(*) AS n FROM users WHERE email LIKE $1", f"%@{domain}")
    return int(rows[0]["n"])


def _stop(worker, timeout: float = 30) -> int:
    worker.signal(signal.SIGTERM)
    return worker.wait(timeout)


async def test_200_tasks_share_one_engine_per_process(
    start_worker, app_name, task_queue, celery_client: Celery, users_table, pg
) -> None:
    worker = start_worker(app_name, task_queue, **_worker_env())
    worker.wait_for_log("worker loop started", timeout=10)
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    with ConnectionSampler(pg.url, app_name) as sampler:
        results = [
            celery_client.send_task(
                "kit.import_users",
                args=[[{"username": f"w{i}", "email": f"w{i}@{domain}"}]],
                queue=task_queue,
            )
            for i in range(200)
        ]
        values = await asyncio.to_thread(lambda: [r.get(timeout=60) for r in results])
    assert [v["imported"] for v in values] == [1] * 200
    assert await _count_domain(pg, domain) == 200
    assert 0 < sampler.peak <= PROCESSES * (POOL_SIZE + MAX_OVERFLOW), sampler.samples

    code = await asyncio.to_thread(_stop, worker)
    assert code == 0, worker.output()[-3000:]
    assert await wait_no_connections(pg.url, app_name) == 0
    out = worker.output()
    assert not [e for e in LOOP_ERRORS if e in out], out[-3000:]
    started = set(re.findall(r"worker loop started in pid (\d+)", out))
    assert len(started) == PROCESSES  # one loop per child, not one per task
    assert out.count("closed its engine") == PROCESSES


async def test_duplicate_email_fails_without_retry(
    start_worker, app_name, task_queue, celery_client: Celery, users_table, pg
) -> None:
    worker = start_worker(app_name, task_queue, **_worker_env())
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    rows = [{"username": "a", "email": f"a@{domain}"}, {"username": "b", "email": f"a@{domain}"}]
    result = celery_client.send_task("kit.import_users", args=[rows], queue=task_queue)
    with pytest.raises(Exception) as caught:
        await asyncio.to_thread(result.get, timeout=30)
    assert type(caught.value).__name__ == "DuplicateKeyError"
    assert result.state == "FAILURE" and not result.retries
    assert await _count_domain(pg, domain) == 0  # the batch rolled back as a whole
    assert "Retry in" not in worker.output()


async def test_task_hit_by_killed_backend_is_retried(
    start_worker, app_name, task_queue, celery_client: Celery, users_table, pg
) -> None:
    worker = start_worker(app_name, task_queue, **_worker_env())
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    seed = [{"username": f"r{i}", "email": f"r{i}@{domain}"} for i in range(3)]
    celery_client.send_task("kit.import_users", args=[seed], queue=task_queue).get(timeout=30)

    result = celery_client.send_task("kit.recompute_profiles", kwargs={"server_delay": 1.5}, queue=task_queue)
    deadline = time.monotonic() + 20
    while not (pids := await sleeping_backends(pg.url, app_name)):
        assert time.monotonic() < deadline, worker.output()[-3000:]
        await asyncio.sleep(0.05)
    assert await terminate(pg.url, pids[0])

    value = await asyncio.to_thread(result.get, timeout=60)
    assert result.state == "SUCCESS"
    assert value["retries"] >= 1 and value["updated"] >= 3
    rows = await fetch(pg.url, "SELECT profile FROM users WHERE email LIKE $1", f"%@{domain}")
    assert all(domain in str(r["profile"]) for r in rows)
    assert "Retry in" in worker.output()
    code = await asyncio.to_thread(_stop, worker)
    assert code == 0
    assert await wait_no_connections(pg.url, app_name) == 0


async def test_sigterm_waits_for_the_running_task(
    start_worker, app_name, task_queue, celery_client: Celery, users_table, pg
) -> None:
    worker = start_worker(app_name, task_queue, **_worker_env())
    result = celery_client.send_task("kit.recompute_profiles", kwargs={"server_delay": 2}, queue=task_queue)
    deadline = time.monotonic() + 20
    while not await sleeping_backends(pg.url, app_name):
        assert time.monotonic() < deadline, worker.output()[-3000:]
        await asyncio.sleep(0.05)
    code = await asyncio.to_thread(_stop, worker)  # warm shutdown: the task finishes first
    assert code == 0
    assert (await asyncio.to_thread(result.get, timeout=10))["retries"] == 0
    assert await wait_no_connections(pg.url, app_name) == 0
    out = worker.output()
    assert "Warm shutdown" in out and out.count("closed its engine") == PROCESSES
    assert not [e for e in LOOP_ERRORS if e in out]


async def _backend_of_sleeping_task(pg: Backend, app_name: str) -> tuple[int, int]:
    """(server pid, client port) of the connection running the drill's pg_sleep."""
    sql = (
        "SELECT pid, client_port FROM pg_stat_activity WHERE application_name = $1"
        " AND state = 'active' AND query ILIKE '%pg_sleep%'"
    )
    deadline = time.monotonic() + 20
    while not (rows := await fetch(pg.url, sql, app_name)):
        assert time.monotonic() < deadline, "the task never reached the server"
        await asyncio.sleep(0.05)
    return int(rows[0]["pid"]), int(rows[0]["client_port"])


async def _wait_backend_gone(pg: Backend, backend_pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while await fetch(pg.url, "SELECT 1 FROM pg_stat_activity WHERE pid = $1", backend_pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_sigterm_to_a_prefork_child_follows_celery(
    start_worker, app_name, task_queue, celery_client: Celery, users_table, pg
) -> None:
    """Celery resets SIGTERM to the default in its children: the kit must not take it over.
    The child dies the Celery way, its server session goes with it, committed rows stay,
    and the worker replaces the child and keeps serving."""
    worker = start_worker(app_name, task_queue, **_worker_env())
    worker.wait_for_log("worker loop started", timeout=10)
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    seed = [{"username": f"c{i}", "email": f"c{i}@{domain}"} for i in range(3)]
    celery_client.send_task("kit.import_users", args=[seed], queue=task_queue).get(timeout=30)

    celery_client.send_task("kit.recompute_profiles", kwargs={"server_delay": 10}, queue=task_queue)
    backend_pid, port = await _backend_of_sleeping_task(pg, app_name)
    child = pid_owning_port(port, child_pids(worker.pid))
    assert child is not None, "no worker child holds the task's connection"
    os.kill(child, signal.SIGTERM)

    # Celery's way: the child runs worker_process_shutdown (the kit closes its engine within
    # DB_SHUTDOWN_TIMEOUT, killing the busy server session), then dies of the signal
    await asyncio.to_thread(worker.wait_for_log, f"pid:{child} exited with 'signal 15 (SIGTERM)'", 20.0)
    assert await _wait_backend_gone(pg, backend_pid, timeout=5.0), "the child's server session stayed"
    assert await _count_domain(pg, domain) == 3  # committed rows are never lost
    more = [{"username": "c9", "email": f"c9@{domain}"}]
    result = celery_client.send_task("kit.import_users", args=[more], queue=task_queue)
    assert (await asyncio.to_thread(result.get, timeout=30))["imported"] == 1
    code = await asyncio.to_thread(_stop, worker)
    assert code == 0, worker.output()[-3000:]
    assert await wait_no_connections(pg.url, app_name) == 0
