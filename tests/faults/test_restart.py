"""Fault 1: the database server restarts while the pool is idle; the next get_session()
query succeeds (pre-ping), zero failed requests. The server is always brought back."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator

import pytest

from internal.infra import database as infra
from pkg.database.testing import assert_no_checked_out_connections
from tests.conftest import REQUIRE, Backend
from tests.faults.helpers import server_connections
from tests.faults.test_server_faults import fill_pool, select_one, settings

PG_CTL = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main"]
MARIADB_START = ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"]


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def _mariadb_up() -> bool:
    done = subprocess.run(["mysqladmin", "-h127.0.0.1", "-uroot", "ping"], capture_output=True, check=False)
    return done.returncode == 0


def _wait(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "server did not come back"
        time.sleep(0.2)


def _mariadb_process() -> bool:
    """A live (not zombie) mariadbd process exists."""
    done = subprocess.run(
        ["ps", "-C", "mariadbd", "-o", "stat="], capture_output=True, text=True, check=False
    )
    return any(not state.startswith("Z") for state in done.stdout.split())


def _start_mariadb() -> bool:
    """Start MariaDB once the old process is gone (start-stop-daemon skips a live one)."""
    if _mariadb_up():
        return True
    if not _mariadb_process():
        subprocess.run(MARIADB_START, capture_output=True, check=False)
    return False


def _pg_up() -> bool:
    cmd = ["pg_isready", "-h", "127.0.0.1", "-p", "5432"]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def restart(name: str) -> None:
    """Restart the server; whatever happens, leave it running."""
    try:
        if name == "postgresql":
            _run([*PG_CTL, "restart"])
        else:
            _run(["mysqladmin", "-h127.0.0.1", "-uroot", "shutdown"])
            _wait(lambda: not _mariadb_process())
    finally:
        if name == "postgresql":
            if not _pg_up():
                subprocess.run([*PG_CTL, "start"], capture_output=True, check=False)
            _wait(_pg_up)
        else:
            _wait(_start_mariadb, timeout=60)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("fault_backend", ["postgresql", "mysql"], indirect=True),
]


@pytest.fixture
async def db(fault_backend: Backend, app_name: str) -> AsyncIterator[Backend]:
    if shutil.which("pg_ctlcluster" if fault_backend.name == "postgresql" else "mysqladmin") is None:
        (pytest.fail if REQUIRE else pytest.skip)("server control tools not available")
    infra.reset_async_db()
    await infra.init_async_db(settings(fault_backend, app_name, db_pool_size=2, db_max_overflow=0))
    yield fault_backend
    await infra.close_async_db(timeout=5)


async def test_server_restart_while_idle(db: Backend, app_name: str) -> None:
    await fill_pool()
    assert await server_connections(db, app_name) == 2
    await asyncio.to_thread(restart, db.name)
    results = [await select_one() for _ in range(10)]
    assert results == [1] * 10  # zero failed requests
    assert_no_checked_out_connections(infra.get_engine())
