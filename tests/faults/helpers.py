"""Helpers of the fault tests: run kit scripts as real subprocesses, count server
connections, read the server logs, and check stderr for shutdown noise."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import Backend

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
MYSQL_LOG = Path("/var/log/mysql/error.log")
NOISE = (
    "Event loop is closed",
    "Task was destroyed",
    "non-checked-in connection",
    "ResourceWarning",
    "attached to a different loop",
    "Exception ignored",
    "unclosed",
    "was never awaited",
)


def script_env(backend: Backend, app_name: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "APP_"))}
    env.update(
        APP_ENV="faults",  # no config file: configured purely from the environment
        DB_URL=backend.url.render_as_string(hide_password=False),
        DB_APPLICATION_NAME=app_name,
        DB_SHUTDOWN_TIMEOUT="5",
        DB_SLOW_QUERY_THRESHOLD="10",
        PYTHONPATH=str(ROOT),
        PYTHONWARNINGS="default",  # ResourceWarning & co. reach stderr if they happen
    )
    env.update(extra)
    return env


def start_script(name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / name), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_script(
    name: str, *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def noise_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(bad in line for bad in NOISE)]


async def admin_scalar(backend: Backend, sql: str, params: dict[str, object] | None = None) -> object:
    assert backend.admin_url is not None
    engine = create_async_engine(backend.admin_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params or {})).scalar()
    finally:
        await engine.dispose()


async def admin_execute(backend: Backend, sql: str, params: dict[str, object] | None = None) -> None:
    assert backend.admin_url is not None
    engine = create_async_engine(backend.admin_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params or {})
    finally:
        await engine.dispose()


async def server_connections(backend: Backend, app_name: str) -> int:
    """Sessions of this test's script on the server (PG: by application_name; MariaDB: by db)."""
    if backend.name == "sqlite":
        return 0
    if backend.name == "postgresql":
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
        return int(await admin_scalar(backend, sql, {"app": app_name}) or 0)  # type: ignore[call-overload]
    sql = "SELECT count(*) FROM information_schema.processlist WHERE db = :db AND id <> connection_id()"
    return int(await admin_scalar(backend, sql, {"db": backend.url.database}) or 0)  # type: ignore[call-overload]


async def wait_no_connections(backend: Backend, app_name: str, within: float = 2.0) -> int:
    deadline = time.monotonic() + within
    while True:
        left = await server_connections(backend, app_name)
        if left == 0 or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.1)


class ServerLog:
    """New lines of the server's log about this run's database since :meth:`mark`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.path = {"postgresql": PG_LOG, "mysql": MYSQL_LOG}.get(backend.name)
        self.offset = 0

    def mark(self) -> ServerLog:
        if self.path is not None and self.path.exists():
            self.offset = self.path.stat().st_size
        return self

    def lines(self) -> list[str]:
        if self.path is None or not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read().decode(errors="replace")
        db = self.backend.url.database or ""
        return [line for line in data.splitlines() if db in line]

    def disconnect_errors(self) -> list[str]:
        """PG: 'unexpected EOF' / 'could not receive data'; MariaDB: 'Aborted connection'."""
        bad = ("unexpected EOF", "could not receive data", "Aborted connection")
        return [line for line in self.lines() if any(b in line for b in bad)]
