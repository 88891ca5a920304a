"""Fixtures for the process tests: the run's PostgreSQL database, a users table, and
factories that start the real web server / Celery worker as subprocesses (always reaped)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery

from internal.app import create_tables
from pkg.database import new_async_engine
from tests.conftest import Backend, resolve_backend
from tests.internal.helpers.procs import Proc, free_port, wait_http_ready

TEST_BROKER = os.environ.get("KIT_TEST_BROKER_URL", "redis://127.0.0.1:6379/5")
TEST_RESULTS = os.environ.get("KIT_TEST_RESULT_URL", "redis://127.0.0.1:6379/6")
_OWN_PREFIXES = ("DB_", "APP_", "CELERY_", "LOG_LEVEL")


@dataclass
class WebServer:
    proc: Proc
    base_url: str
    app_name: str


@pytest.fixture
def pg(server_backends: dict[str, Backend | str], tmp_path: Path) -> Backend:
    """This run's own PostgreSQL database."""
    return resolve_backend("postgresql", server_backends, tmp_path)


@pytest.fixture
def app_name() -> str:
    """A unique ``application_name``, to find this test's connections in pg_stat_activity."""
    return f"kit-t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def users_table(pg: Backend) -> None:
    """The models' tables in the run's database (created if missing; rows are kept)."""
    engine = new_async_engine(pg.url, slow_query_threshold=None)
    try:
        await create_tables(engine)
    finally:
        await engine.dispose()


def service_env(backend: Backend, app_name: str, **overrides: str) -> dict[str, str]:
    """The environment of a subprocess: APP_ENV=test pointed at ``backend``, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update(
        APP_ENV="test",
        DB_URL=backend.url.render_as_string(hide_password=False),
        DB_APPLICATION_NAME=app_name,
        DB_SLOW_QUERY_THRESHOLD="5",
        CELERY_BROKER_URL=TEST_BROKER,
        CELERY_RESULT_BACKEND=TEST_RESULTS,
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@pytest.fixture
def start_web(pg: Backend, tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """``start_web(app_name, **env)``: ``scripts/run.py`` on a free port, ready on /health."""
    started: list[Proc] = []

    def start(app_name: str, **overrides: str) -> WebServer:
        port = free_port()
        env = service_env(pg, app_name, APP_PORT=str(port), APP_HOST="127.0.0.1", **overrides)
        env.setdefault("APP_CREATE_TABLES", "true")
        proc = Proc(["scripts/run.py"], env, tmp_path / f"web-{port}.log")
        started.append(proc)
        base_url = f"http://127.0.0.1:{port}"
        wait_http_ready(proc, f"{base_url}/health")
        return WebServer(proc, base_url, app_name)

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def start_worker(pg: Backend, tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """``start_worker(app_name, queue, *flags, **env)``: the real worker, ready for tasks."""
    started: list[Proc] = []

    def start(app_name: str, queue: str, *flags: str, **overrides: str) -> Proc:
        env = service_env(pg, app_name, **overrides)
        args = ["scripts/run_celery_worker.py", "--queues", queue, "--concurrency", "2", *flags]
        proc = Proc(args, env, tmp_path / f"worker-{queue}.log")
        started.append(proc)
        proc.wait_for_log(" ready.", timeout=30)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def task_queue() -> str:
    """A queue name of this test only: concurrent runs never take each other's tasks."""
    return f"kit-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def celery_client() -> Iterator[Celery]:
    """A producer/result client on the test broker (tasks are sent by name)."""
    client = Celery("kit-tests", broker=TEST_BROKER, backend=TEST_RESULTS)
    client.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_extended=True,
        broker_connection_retry_on_startup=True,
    )
    try:
        yield client
    finally:
        client.close()
