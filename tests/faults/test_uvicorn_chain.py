"""uvicorn installs its SIGTERM handler before the app's lifespan creates the engine: the
kit's handler must chain to it, so uvicorn drains the in-flight request and the app's
lifespan closes the database (no dispose under a running request)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

import httpx
import pytest

from tests.conftest import Backend
from tests.faults.helpers import ServerLog, noise_in, script_env, start_script, wait_no_connections

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("uvicorn did not start")


def _request_then_sigterm(env: dict[str, str]) -> tuple[dict[str, object], str, str, int]:
    """Start the app, begin GET /slow, SIGTERM the server mid-request; collect everything."""
    port = _free_port()
    proc = start_script("uvicorn_app.py", str(port), env=env)
    result: dict[str, object] = {}
    try:
        _wait_ready(port)

        def request() -> None:
            response = httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10)
            result.update(status=response.status_code, body=response.json())

        client = threading.Thread(target=request)
        client.start()
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "in transaction"
        os.kill(proc.pid, signal.SIGTERM)
        client.join(10)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return result, out, err, proc.returncode


async def test_sigterm_drains_in_flight_request(fault_backend: Backend, app_name: str) -> None:
    log = await ServerLog.start(fault_backend)
    env = script_env(fault_backend, app_name)
    result, out, err, status = await asyncio.to_thread(_request_then_sigterm, env)
    assert result == {"status": 200, "body": {"value": 1}}  # drained, not cut off
    assert "closed checked_out=0" in out  # the app's lifespan closed the database itself
    assert status == -signal.SIGTERM  # uvicorn re-raises the signal it captured
    assert noise_in(err) == [], err
    assert await wait_no_connections(fault_backend, app_name, within=2.0) == 0
    assert await log.disconnect_errors() == []
