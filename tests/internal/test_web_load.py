"""Concurrency against a small pool, an unreachable database, and an import without I/O."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import httpx
import pytest

from tests.internal.conftest import WebServer
from tests.internal.helpers.pg import ConnectionSampler, wait_no_connections
from tests.internal.helpers.procs import ROOT

pytestmark = pytest.mark.slow


async def test_200_concurrent_requests_on_a_pool_of_5(start_web, app_name, users_table, pg) -> None:
    server: WebServer = start_web(app_name, DB_POOL_SIZE="5", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="20")
    domain = f"{uuid.uuid4().hex[:8]}.example.com"
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as client:

        async def one(i: int) -> httpx.Response:
            if i % 2 == 0:
                return await client.post("/users", json={"username": f"l{i}", "email": f"l{i}@{domain}"})
            return await client.get("/users", params={"email_domain": domain, "size": 5})

        with ConnectionSampler(pg.url, app_name) as sampler:
            responses = await asyncio.gather(*(one(i) for i in range(200)))
        statuses = [r.status_code for r in responses]
        assert statuses.count(201) == 100 and statuses.count(200) == 100, statuses
        assert (await client.get("/users", params={"email_domain": domain})).json()["total"] == 100
        pool = (await client.get("/health/db")).json()["pool"]
        assert pool["checked_out"] == 0 and pool["size"] == 5
    assert 0 < sampler.peak <= 5, sampler.samples

    server.proc.signal(signal.SIGTERM)
    await asyncio.to_thread(server.proc.wait, 15)
    assert await wait_no_connections(pg.url, app_name) == 0


async def test_health_db_is_503_when_the_database_is_unreachable(start_web, app_name, pg) -> None:
    dead = pg.url.set(host="127.0.0.1", port=1)  # nothing listens on port 1
    server: WebServer = start_web(
        app_name, DB_URL=dead.render_as_string(hide_password=False), APP_CREATE_TABLES="false"
    )
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as client:
        assert (await client.get("/health")).status_code == 200
        db = await client.get("/health/db")
        assert db.status_code == 503 and db.headers["retry-after"]
        assert db.json()["status"] == "unavailable" and db.json()["error"]
        users = await client.get("/users/1")
        assert users.status_code == 503 and users.json()["code"] == "unavailable"


def test_importing_the_app_reads_no_config_and_opens_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "APP_"))}
    env["APP_ENV"] = "no-such-env"  # loading settings would raise ConfigurationError
    code = (
        "import internal.app, internal.infra.celery.app as c, internal.infra.celery.tasks;"
        "from internal.infra.database import _db; assert _db is None;"
        "assert not c.celery_app.configured; print(len(internal.app.app.openapi()['paths']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == 5
