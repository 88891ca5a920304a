"""Fresh, empty databases for migration tests, and ways to run Alembic against them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from internal.config.load_config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
ALEMBIC = str(Path(sys.executable).with_name("alembic"))
_OWN_PREFIXES = ("DB_", "APP_", "CELERY_", "LOG_LEVEL")


async def _admin(admin: URL, statement: str) -> None:
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def fresh_database(name: str, url: URL, admin: URL | None, tmp_path: Path) -> AsyncIterator[URL]:
    """A new empty database on the backend of ``url`` (a new file on SQLite), dropped after."""
    if name == "sqlite" or admin is None:
        yield make_url(f"sqlite+aiosqlite:///{tmp_path / f'fresh-{uuid.uuid4().hex[:6]}.db'}")
        return
    db = f"{url.database}_m{uuid.uuid4().hex[:8]}"
    quote = '"' if url.get_backend_name() == "postgresql" else "`"
    await _admin(admin, f"CREATE DATABASE {quote}{db}{quote}")
    try:
        yield url.set(database=db)
    finally:
        force = " WITH (FORCE)" if quote == '"' else ""
        await _admin(admin, f"DROP DATABASE IF EXISTS {quote}{db}{quote}{force}")


def settings_for(url: URL, **env: str) -> Settings:
    """APP_ENV=test settings pointed at ``url`` (plus ``DB_*`` / ``APP_*`` overrides)."""
    return load_settings("test", environ={"DB_URL": url.render_as_string(hide_password=False), **env})


def cli_env(url: URL | str, **overrides: str) -> dict[str, str]:
    """The environment of an ``alembic`` subprocess pointed at ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    raw = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    env.update(APP_ENV="test", DB_URL=raw, PYTHONUNBUFFERED="1", **overrides)
    return env


def alembic_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``alembic ARGS`` from the repository root, as ``make migrate`` runs it."""
    return subprocess.run(
        [ALEMBIC, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def start_alembic(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ALEMBIC, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


async def scalar(conn: AsyncConnection, sql: str) -> object:
    return (await conn.execute(text(sql))).scalar()


async def table_names(url: URL) -> set[str]:
    """The tables of the database at ``url``."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()
