"""Fault 6: a script committing two-row batches gets SIGTERM / SIGINT at a random moment.

Every batch it reported is in the table, no batch is half there, its connections are
gone from the server within two seconds, and it exits with the documented status:
SIGTERM -> 143 (SystemExit(128 + 15)); SIGINT -> KeyboardInterrupt, i.e. the process
dies of SIGINT (returncode -2, shell status 130).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from functools import partial

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import Backend
from tests.faults.helpers import (
    ServerLog,
    noise_in,
    script_env,
    start_script,
    statement_running,
    wait_no_connections,
    wait_until,
)

pytestmark = pytest.mark.slow

REPEAT = int(os.environ.get("KIT_FAULT_REPEAT", "20"))
EXPECTED = {signal.SIGTERM: 143, signal.SIGINT: -signal.SIGINT}


async def _batches(backend: Backend, table: str) -> dict[int, int]:
    engine = create_async_engine(backend.url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT batch, count(*) FROM {table} GROUP BY batch"))
            return {int(batch): int(parts) for batch, parts in rows}
    finally:
        await engine.dispose()


def _signal_at_random(signum: int, env: dict[str, str], table: str) -> tuple[int, list[int], str]:
    proc = start_script("commit_loop.py", table, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(random.uniform(0.05, 0.6))
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, [int(line) for line in out.split() if line.isdigit()], err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_mid_commit_loop(
    fault_backend: Backend, rows_table: str, app_name: str, signum: int
) -> None:
    env = script_env(fault_backend, app_name)
    log = await ServerLog.start(fault_backend)
    for attempt in range(REPEAT):
        status, reported, stderr = _signal_at_random(signum, env, rows_table)
        assert status == EXPECTED[signum], f"attempt {attempt}: status {status}\n{stderr}"
        assert noise_in(stderr) == [], stderr
        assert await wait_no_connections(fault_backend, app_name, within=2.0) == 0
        batches = await _batches(fault_backend, rows_table)
        assert all(parts == 2 for parts in batches.values()), f"half transaction: {batches}"
        assert set(reported) <= set(batches), "a reported commit is missing"
        await _truncate(fault_backend, rows_table)
    assert await log.disconnect_errors() == []


async def _truncate(backend: Backend, table: str) -> None:
    engine = create_async_engine(backend.url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"DELETE FROM {table}"))
    finally:
        await engine.dispose()


def _sigterm_stuck(env: dict[str, str], backend: Backend, app_name: str) -> tuple[int, float, str]:
    proc = start_script("stuck_query.py", env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        running = partial(statement_running, backend, app_name, "sleep(")
        asyncio.run(wait_until(running, "the 60 s statement on the server"))
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        return proc.returncode, time.monotonic() - sent, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("fault_backend", ["postgresql", "mysql"], indirect=True)
async def test_sigterm_with_stuck_query_is_bounded(fault_backend: Backend, app_name: str) -> None:
    """A statement that never ends within DB_SHUTDOWN_TIMEOUT: the process still exits soon
    after it, says what it cut off, and the server session is killed."""
    env = script_env(fault_backend, app_name, DB_SHUTDOWN_TIMEOUT="2")
    status, elapsed, stderr = await asyncio.to_thread(_sigterm_stuck, env, fault_backend, app_name)
    assert status == 143, stderr
    assert 1.9 <= elapsed < 6.0
    assert "shutdown timeout (2.0s): cancelling 1 busy connection(s)" in stderr
    assert noise_in(stderr) == [], stderr
    assert await wait_no_connections(fault_backend, app_name, within=2.0) == 0
