"""Fault 8: 1,000 sequential asyncio.run() calls on one process-wide database, and a
child forked while the parent's pool holds a live connection."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Backend
from tests.faults.helpers import ServerLog, noise_in, run_script, script_env, wait_no_connections

pytestmark = pytest.mark.slow

POOL_LIMIT = 5 + 10  # DB_POOL_SIZE + DB_MAX_OVERFLOW (defaults)


@pytest.mark.parametrize("mode", ["keep", "reset"])
async def test_thousand_asyncio_runs(fault_backend: Backend, app_name: str, mode: str) -> None:
    log = await ServerLog.start(fault_backend)
    done = run_script("many_runs.py", "1000", mode, env=script_env(fault_backend, app_name), timeout=300)
    assert done.returncode == 0, done.stderr
    assert noise_in(done.stderr) == [], done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["runs"] == 1000
    # each run disposes its connections on its own loop: one at a time, never a pile-up
    assert summary["peak_connections"] <= (1 if fault_backend.name != "sqlite" else 0) < POOL_LIMIT
    assert await wait_no_connections(fault_backend, app_name, within=2.0) == 0
    assert await log.disconnect_errors() == []


@pytest.mark.parametrize("child_exit", ["os_exit", "sys_exit"])
async def test_forked_child_gets_fresh_pool(fault_backend: Backend, app_name: str, child_exit: str) -> None:
    log = await ServerLog.start(fault_backend)
    done = run_script("fork_child.py", child_exit, env=script_env(fault_backend, app_name), timeout=60)
    assert done.returncode == 0, done.stderr
    assert noise_in(done.stderr) == [], done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    pids = {line["who"]: line["server_pid"] for line in lines if "who" in line}
    assert [line["child_status"] for line in lines if "child_status" in line] == [0]
    if fault_backend.name != "sqlite":
        assert pids["child"] != pids["parent-before"]  # the child opened its own connection
        assert pids["parent-after"] == pids["parent-before"]  # the parent's socket survived the child
    assert await wait_no_connections(fault_backend, app_name, within=2.0) == 0
    assert await log.disconnect_errors() == []
