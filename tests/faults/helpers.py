"""Helpers of the fault tests: run kit scripts as real subprocesses, count server
connections, read the server logs, and check stderr for shutdown noise."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import Backend

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
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
    """New lines of the server's own log about this run's database since :meth:`start`.

    The file is the one the server names (PostgreSQL ``pg_current_logfile()``, else the
    Debian cluster log of ``cluster_name``; MariaDB ``@@log_error``), and a probe line the
    server writes at start must be found in it: a log that cannot be read, or is not the
    server's, fails the check instead of passing it empty.
    """

    def __init__(self, backend: Backend, path: Path | None, offset: int, probe: str) -> None:
        self.backend, self.path, self.offset, self.probe = backend, path, offset, probe

    @classmethod
    async def start(cls, backend: Backend) -> ServerLog:
        if backend.name == "sqlite":
            return cls(backend, None, 0, "")
        path = await _server_log_path(backend)
        assert path.is_file(), f"the server's log {path} cannot be read"
        log = cls(backend, path, path.stat().st_size, "")
        log.probe = await _write_probe(backend, f"kit-log-probe-{uuid.uuid4().hex}")
        return log

    async def lines(self) -> list[str]:
        if self.path is None:
            return []  # embedded SQLite: no server, no log
        data = await self._read_until_probe()
        db = self.backend.url.database or ""
        return [line for line in data.splitlines() if db in line]

    async def _read_until_probe(self, within: float = 5.0) -> str:
        assert self.path is not None
        deadline = time.monotonic() + within
        while True:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read().decode(errors="replace")
            if self.probe in data:
                return data
            assert time.monotonic() < deadline, f"{self.path} is not the server's log: probe not found"
            await asyncio.sleep(0.05)

    async def disconnect_errors(self) -> list[str]:
        """PG: 'unexpected EOF' / 'could not receive data'; MariaDB: 'Aborted connection'."""
        bad = ("unexpected EOF", "could not receive data", "Aborted connection")
        return [line for line in await self.lines() if any(b in line for b in bad)]


async def _server_log_path(backend: Backend) -> Path:
    if backend.name == "postgresql":
        current = await admin_scalar(backend, "SELECT pg_current_logfile()")
        if current:
            data_dir = await admin_scalar(backend, "SHOW data_directory")
            return Path(str(data_dir)) / str(current)
        cluster = str(await admin_scalar(backend, "SHOW cluster_name"))  # Debian: "15/main"
        assert "/" in cluster, f"no logging_collector and no Debian cluster_name ({cluster!r})"
        return Path("/var/log/postgresql") / f"postgresql-{cluster.replace('/', '-')}.log"
    log_error = str(await admin_scalar(backend, "SELECT @@log_error") or "")
    assert log_error and log_error != "stderr", f"MariaDB logs to {log_error!r}, not a file"
    data_dir = str(await admin_scalar(backend, "SELECT @@datadir"))
    return Path(data_dir) / log_error  # an absolute log_error wins over the data directory


async def _write_probe(backend: Backend, probe: str) -> str:
    """Make the server write a line to its log; returns the text that marks that line."""
    if backend.name == "postgresql":
        await admin_execute(backend, f"DO $$ BEGIN RAISE LOG '{probe}'; END $$")
        return probe
    # MariaDB has no SQL that writes its error log: a connection dropped without COM_QUIT
    # logs "Aborted connection <id> to db: ..." (log_warnings >= 2), found by its id.
    assert backend.admin_url is not None
    engine = create_async_engine(backend.admin_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            connection_id = (await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one()
            raw = await conn.get_raw_connection()
            raw.driver_connection.close()  # aiomysql: drop the socket, no COM_QUIT
            raw.invalidate()
    finally:
        await engine.dispose()
    return f"Aborted connection {connection_id} to db"


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, within: float = 10.0) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def statement_running(backend: Backend, app_name: str, needle: str) -> bool:
    """A statement containing ``needle`` is executing now for this test's script (server view)."""
    if backend.name == "postgresql":
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
            " AND state = 'active' AND query ILIKE :needle"
        )
        params: dict[str, object] = {"app": app_name, "needle": f"%{needle}%"}
    else:
        sql = "SELECT count(*) FROM information_schema.processlist WHERE db = :db AND info LIKE :needle"
        params = {"db": backend.url.database, "needle": f"%{needle}%"}
    return int(await admin_scalar(backend, sql, params) or 0) > 0  # type: ignore[call-overload]
