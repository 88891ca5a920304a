"""Graceful drain of the real server: SIGTERM with requests in flight, and the deadline."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from tests.conftest import Backend
from tests.internal.conftest import WebServer
from tests.internal.helpers.pg import sleeping_backends, wait_no_connections

pytestmark = pytest.mark.slow


async def _wait_sleeping(pg: Backend, app_name: str, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(await sleeping_backends(pg.url, app_name)) < n:
        assert time.monotonic() < deadline, f"fewer than {n} requests reached the database"
        await asyncio.sleep(0.05)


async def _refused_or_503(base_url: str) -> str:
    """A request on a fresh connection after SIGTERM: 'refused' or '503'; never served."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as fresh:
        try:
            response = await fresh.get("/health")
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
            return "refused"
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    return "503"


async def test_sigterm_lets_in_flight_requests_finish(start_web, app_name, users_table, pg) -> None:
    server: WebServer = start_web(
        app_name, APP_DIAGNOSTICS="true", APP_DRAIN_TIMEOUT="10", DB_POOL_SIZE="10", DB_MAX_OVERFLOW="10"
    )
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as client:
        slow = [
            asyncio.create_task(client.get("/diagnostics/sleep", params={"seconds": 2.5})) for _ in range(20)
        ]
        await _wait_sleeping(pg, app_name, 20)
        sent = time.monotonic()
        server.proc.signal(signal.SIGTERM)
        await asyncio.to_thread(server.proc.wait_for_log, "draining (", 5.0)
        for _ in range(3):  # each asserts: refused, or 503 with Retry-After; never served
            await _refused_or_503(server.base_url)
        responses = await asyncio.gather(*slow)
    assert [r.status_code for r in responses] == [200] * 20
    assert all(r.json()["slept"] == 2.5 for r in responses)

    code = await asyncio.to_thread(server.proc.wait, 15)
    assert time.monotonic() - sent < 10 + 5, "exceeded drain deadline + pool shutdown timeout"
    assert code in (0, -signal.SIGTERM), server.proc.output()
    assert await wait_no_connections(pg.url, app_name) == 0
    out = server.proc.output()
    assert "draining (SIGTERM): 20 request(s) in flight" in out
    assert "20 in flight at drain start, 20 finished, 0 cancelled" in out
    assert "database closed" in out


async def test_drain_deadline_cancels_what_is_left(start_web, app_name, users_table, pg) -> None:
    server: WebServer = start_web(app_name, APP_DIAGNOSTICS="true", APP_DRAIN_TIMEOUT="1")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        stuck = [
            asyncio.create_task(client.get("/diagnostics/sleep", params={"seconds": 20})) for _ in range(3)
        ]
        await _wait_sleeping(pg, app_name, 3)
        sent = time.monotonic()
        server.proc.signal(signal.SIGTERM)
        results = await asyncio.gather(*stuck, return_exceptions=True)
    code = await asyncio.to_thread(server.proc.wait, 15)
    assert time.monotonic() - sent < 1 + 5 + 2
    assert [r.status_code for r in results] == [503] * 3, results  # forced: 503, never a 200
    assert all(r.json()["detail"].endswith("deadline exceeded") for r in results)
    assert code in (0, -signal.SIGTERM)
    out = server.proc.output()
    assert "3 in flight at drain start, 0 finished, 3 cancelled by the deadline" in out
    assert "drain forced" in out
    assert await wait_no_connections(pg.url, app_name, timeout=5) == 0, "server-side sleeps left behind"
