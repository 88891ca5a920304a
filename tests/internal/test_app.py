"""The two ways to serve the app: ``scripts/run.py`` (``make run``) and the plain uvicorn CLI."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.internal.conftest import service_env
from tests.internal.helpers.pg import connection_count, wait_no_connections
from tests.internal.helpers.procs import Proc, free_port, wait_http_ready

pytestmark = pytest.mark.slow


def test_make_run_serves_sqlite_with_migrations_applied(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "APP_", "CELERY_"))}
    db_file = tmp_path / "dev.db"
    env.update(APP_ENV="dev", DB_DATABASE=str(db_file), APP_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = Proc(["scripts/run.py"], env, tmp_path / "run.log")  # what `make run` executes
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http_ready(proc, f"{base}/health")
        created = httpx.post(f"{base}/users", json={"username": "dev", "email": "dev@example.com"})
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{base}/users").json()
        assert listed["total"] == 1 and listed["items"][0]["email"] == "dev@example.com"
        health = httpx.get(f"{base}/health/db").json()
        assert health["status"] == "ok" and health["migrations"]["current"] is True, health
        assert httpx.get(f"{base}/docs").status_code == 200
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        proc.stop()
    out = proc.output()
    assert "Running upgrade  -> " in out and "tables ensured" not in out and "env=dev" in out
    assert db_file.is_file()


async def test_plain_uvicorn_cli_runs_the_lifespan(tmp_path: Path, pg, app_name, users_table) -> None:
    port = free_port()
    env = service_env(pg, app_name)
    args = ["-m", "uvicorn", "internal.app:app", "--port", str(port), "--timeout-graceful-shutdown", "3"]
    proc = Proc(args, env, tmp_path / "uvicorn.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http_ready(proc, f"{base}/health")
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/health/db")).json()["pool"]["checked_out"] == 0
        assert await connection_count(pg.url, app_name) >= 1  # the pool keeps its connection
        proc.signal(signal.SIGTERM)
        proc.wait(15)
    finally:
        proc.stop()
    assert await wait_no_connections(pg.url, app_name) == 0
    out = proc.output()
    assert "web app ready (env=test" in out and "drain finished" in out and "database closed" in out


def test_startup_fails_fast_when_tables_cannot_be_created(tmp_path: Path, pg, app_name) -> None:
    dead = pg.url.set(port=1).render_as_string(hide_password=False)  # nothing listens on port 1
    env = service_env(pg, app_name, DB_URL=dead, APP_CREATE_TABLES="true", APP_PORT=str(free_port()))
    proc = Proc(["scripts/run.py"], env, tmp_path / "fail.log")
    try:
        code = proc.wait(30)
    finally:
        proc.stop()
    assert code != 0
    out = proc.output()
    assert "Application startup failed" in out and "database closed" in out
