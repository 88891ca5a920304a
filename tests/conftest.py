"""The backend matrix: every test that takes ``backend`` or ``engine`` runs on sqlite,
postgresql and mysql.

Each test run gets its own database on each server (``kit_<random>``), dropped at the
end, so concurrent runs never share tables. Server URLs are overridable with
``KIT_TEST_PG_URL`` / ``KIT_TEST_MYSQL_URL``. An unreachable server skips its backend,
unless ``KIT_REQUIRE_BACKENDS=1`` (set by ``.ci/run``), where it fails the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import MetaData, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pkg.database import new_async_engine

BACKENDS = ("sqlite", "postgresql", "mysql")
SERVER_URLS = {
    "postgresql": os.environ.get("KIT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("KIT_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
}
REQUIRE = os.environ.get("KIT_REQUIRE_BACKENDS") == "1"


@dataclass(frozen=True)
class Backend:
    """One database of the matrix: its name and the URL of this run's own database."""

    name: str
    url: URL
    admin_url: URL | None = None  # the server's `test` database, for admin statements

    def engine(self, **kw: object) -> AsyncEngine:
        """A kit engine on this backend; the caller disposes it."""
        kw.setdefault("slow_query_threshold", None)
        return new_async_engine(self.url, **kw)  # type: ignore[arg-type]


async def _admin(url: URL, statements: list[str]) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _create_server_db(name: str, run_db: str) -> Backend | str:
    admin = make_url(SERVER_URLS[name])
    quote = '"' if name == "postgresql" else "`"
    try:
        asyncio.run(_admin(admin, [f"CREATE DATABASE {quote}{run_db}{quote}"]))
    except Exception as exc:  # the reason is reported as a skip or a failure
        return f"{name} unreachable at {admin.render_as_string(hide_password=True)}: {exc!r}"
    return Backend(name, admin.set(database=run_db), admin)


def _drop_server_db(backend: Backend, run_db: str) -> None:
    assert backend.admin_url is not None
    if backend.name == "postgresql":
        stmt = f'DROP DATABASE IF EXISTS "{run_db}" WITH (FORCE)'
    else:
        stmt = f"DROP DATABASE IF EXISTS `{run_db}`"
    asyncio.run(_admin(backend.admin_url, [stmt]))


@pytest.fixture(scope="session")
def server_backends() -> Iterator[dict[str, Backend | str]]:
    """Create this run's databases on each server (lazily, once per session)."""
    run_db = f"kit_{uuid.uuid4().hex[:10]}"
    made: dict[str, Backend | str] = {}
    for name in SERVER_URLS:
        made[name] = _create_server_db(name, run_db)
    yield made
    for value in made.values():
        if isinstance(value, Backend):
            _drop_server_db(value, run_db)


def resolve_backend(name: str, server_backends: dict[str, Backend | str], tmp_path: Path) -> Backend:
    if name == "sqlite":
        return Backend("sqlite", make_url(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"))
    found = server_backends[name]
    if isinstance(found, str):
        if REQUIRE:
            pytest.fail(found)
        pytest.skip(found)
    return found


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, server_backends: dict[str, Backend | str], tmp_path: Path
) -> Backend:
    """The backend-matrix fixture: one test per backend."""
    return resolve_backend(request.param, server_backends, tmp_path)


@pytest.fixture
async def engine(backend: Backend) -> AsyncIterator[AsyncEngine]:
    """A kit engine on the backend, disposed after the test."""
    eng = backend.engine()
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def create_tables(engine: AsyncEngine) -> object:
    """``await create_tables(metadata)``: (re)create a metadata's tables from empty.

    Tables live in this run's own database, so dropping first isolates each test.
    """

    async def _create(metadata: MetaData) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)

    return _create


@pytest.fixture(params=("postgresql", "mysql"))
def server_backend(
    request: pytest.FixtureRequest, server_backends: dict[str, Backend | str], tmp_path: Path
) -> Backend:
    """The server half of the matrix, for tests of server-only behaviour."""
    return resolve_backend(request.param, server_backends, tmp_path)
