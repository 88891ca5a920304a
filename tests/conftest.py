"""The backend matrix: every test that takes ``backend`` or ``engine`` runs on sqlite,
postgresql and mysql; the DAO / QueryBuilder suite (``tests/pkg/database/test_dao_*.py``
and ``tests/pkg/database/query/``) also on ``postgresql+pgbouncer``: the same PostgreSQL
database reached through PgBouncer in transaction pooling mode (127.0.0.1:6432, started by
``scripts/services.sh``), with the kit's ``pgbouncer="transaction"`` engine option. A test
of that suite that is inherently about one server session opts out with
``@pytest.mark.direct_only``.

Each test run gets its own database on each server (``kit_<random>``), dropped at the end,
so concurrent runs never share tables. Server URLs are overridable with
``KIT_TEST_PG_URL`` / ``KIT_TEST_MYSQL_URL`` / ``KIT_TEST_PGBOUNCER_URL``.

A selected backend that is unreachable FAILS its tests, naming it. To run on fewer
backends, say so: ``KIT_TEST_BACKENDS=sqlite`` (a comma list of ``sqlite``,
``postgresql``, ``mysql``, ``postgresql+pgbouncer``); tests of a backend not selected are
skipped with that reason. The run ends with a ``backends: ...`` line naming the backends
that ran. (``KIT_REQUIRE_BACKENDS=1``, once needed for this, is now the only behaviour.)
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

BACKENDS = ("sqlite", "postgresql", "mysql")  # the direct matrix
PGBOUNCER = "postgresql+pgbouncer"
REPLICA = "postgresql+replica"  # the streaming standby of postgresql (tests marked `replica`)
ALL_BACKENDS = (*BACKENDS, PGBOUNCER, REPLICA)
SERVER_URLS = {
    "postgresql": os.environ.get("KIT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("KIT_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
}
PGBOUNCER_URL = os.environ.get("KIT_TEST_PGBOUNCER_URL", "postgresql+asyncpg://postgres@127.0.0.1:6432/test")
REPLICA_URL = os.environ.get("KIT_TEST_REPLICA_URL", "postgresql+asyncpg://postgres@127.0.0.1:5433/test")
REPLICA_WAIT = 30.0  # seconds for the standby to replay this run's CREATE DATABASE
# Suites that also run through PgBouncer (paths relative to tests/).
POOLED_SUITES = ("pkg/database/test_dao_", "pkg/database/query/")
REQUIRE = True  # an unreachable backend fails (kept for modules that import it)
_TESTS = Path(__file__).resolve().parent


def selected_backends() -> tuple[str, ...]:
    """The backends of this run: ``KIT_TEST_BACKENDS`` (comma list) or all of them."""
    raw = os.environ.get("KIT_TEST_BACKENDS", "").strip()
    if not raw:
        return ALL_BACKENDS
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in ALL_BACKENDS]
    if unknown:
        raise pytest.UsageError(f"KIT_TEST_BACKENDS: unknown {unknown}; valid: {', '.join(ALL_BACKENDS)}")
    return names


_ran: set[str] = set()  # backends at least one test actually ran on


def pytest_configure(config: pytest.Config) -> None:
    """A misspelt ``KIT_TEST_BACKENDS`` stops the run before collection."""
    selected_backends()


@dataclass(frozen=True)
class Backend:
    """One database of the matrix: its name and the URL of this run's own database."""

    name: str
    url: URL
    admin_url: URL | None = None  # the server's `test` database, for admin statements
    pgbouncer: str | None = None  # the kit's pgbouncer= mode when the URL is a pooler

    @property
    def dialect(self) -> str:
        """The SQL dialect (``postgresql`` also for ``postgresql+pgbouncer``)."""
        return self.url.get_backend_name()

    def engine(self, **kw: object) -> AsyncEngine:
        """A kit engine on this backend; the caller disposes it."""
        kw.setdefault("slow_query_threshold", None)
        if self.pgbouncer is not None:
            kw.setdefault("pgbouncer", self.pgbouncer)
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
    except Exception as exc:  # the reason is reported as a failure
        return f"{name} unreachable at {admin.render_as_string(hide_password=True)}: {exc!r}"
    return Backend(name, admin.set(database=run_db), admin)


def _pgbouncer_backend(pg: Backend | str, run_db: str) -> Backend | str:
    """This run's PostgreSQL database, reached through PgBouncer (created directly)."""
    url = make_url(PGBOUNCER_URL).set(database=run_db)
    where = url.render_as_string(hide_password=True)
    if isinstance(pg, str):
        return f"{PGBOUNCER} needs postgresql: {pg}"
    try:  # PgBouncer forwards to the run's database (a statement inside a transaction)
        engine = create_async_engine(url, connect_args={"statement_cache_size": 0}, pool_size=1)

        async def probe() -> None:
            try:
                async with engine.begin() as conn:
                    await conn.exec_driver_sql("SELECT 1")
            finally:
                await engine.dispose()

        asyncio.run(probe())
    except Exception as exc:
        return f"{PGBOUNCER} unreachable at {where} (scripts/services.sh starts it): {exc!r}"
    return Backend(PGBOUNCER, url, pg.admin_url, pgbouncer="transaction")


def _replica_backend(pg: Backend | str, run_db: str) -> Backend | str:
    """This run's PostgreSQL database as the standby serves it, once replayed there."""
    url = make_url(REPLICA_URL).set(database=run_db)
    where = url.render_as_string(hide_password=True)
    if isinstance(pg, str):
        return f"{REPLICA} needs postgresql: {pg}"

    async def replayed() -> None:  # poll the standby's catalog, bounded
        engine = create_async_engine(make_url(REPLICA_URL), pool_size=1)
        try:
            async with engine.connect() as conn:
                assert (await conn.scalar(text("SELECT pg_is_in_recovery()"))) is True, "not a standby"
                find = text("SELECT 1 FROM pg_database WHERE datname = :name")
                for _ in range(int(REPLICA_WAIT / 0.05)):  # polling server state, bounded
                    if (await conn.scalar(find, {"name": run_db})) is not None:
                        return
                    await asyncio.sleep(0.05)
                raise TimeoutError(f"{run_db} not replayed on the standby within {REPLICA_WAIT}s")
        finally:
            await engine.dispose()

    try:
        asyncio.run(replayed())
    except BaseException as exc:
        return f"{REPLICA} unreachable at {where} (scripts/services.sh builds it): {exc!r}"
    return Backend(REPLICA, url, pg.admin_url)


def _drop_server_db(backend: Backend, run_db: str) -> None:
    assert backend.admin_url is not None
    if backend.name == "postgresql":
        stmt = f'DROP DATABASE IF EXISTS "{run_db}" WITH (FORCE)'
    else:
        stmt = f"DROP DATABASE IF EXISTS `{run_db}`"
    asyncio.run(_admin(backend.admin_url, [stmt]))


@pytest.fixture(scope="session")
def server_backends() -> Iterator[dict[str, Backend | str]]:
    """Create this run's databases on each selected server (lazily, once per session)."""
    run_db = f"kit_{uuid.uuid4().hex[:10]}"
    selected = selected_backends()
    made: dict[str, Backend | str] = {}
    for name in SERVER_URLS:
        if name in selected or (name == "postgresql" and {PGBOUNCER, REPLICA} & set(selected)):
            made[name] = _create_server_db(name, run_db)
    if PGBOUNCER in selected:
        made[PGBOUNCER] = _pgbouncer_backend(made["postgresql"], run_db)
    if REPLICA in selected:
        made[REPLICA] = _replica_backend(made["postgresql"], run_db)
    yield made
    for name, value in made.items():
        if isinstance(value, Backend) and name in SERVER_URLS:
            _drop_server_db(value, run_db)


def resolve_backend(name: str, server_backends: dict[str, Backend | str], tmp_path: Path) -> Backend:
    """The backend ``name`` for one test: skipped if the run does not select it (the user
    narrowed ``KIT_TEST_BACKENDS``), failed naming it if it is unreachable."""
    if name not in selected_backends():
        pytest.skip(f"{name} not selected (KIT_TEST_BACKENDS={os.environ.get('KIT_TEST_BACKENDS', '')})")
    if name == "sqlite":
        found: Backend | str = Backend("sqlite", make_url(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"))
    else:
        found = server_backends[name]
    if isinstance(found, str):
        pytest.fail(f"backend {name} unreachable (narrow the run with KIT_TEST_BACKENDS to skip it): {found}")
    _ran.add(name)
    return found


def _runs_behind_pooler(metafunc: pytest.Metafunc) -> bool:
    path = metafunc.definition.path
    try:
        relative = path.resolve().relative_to(_TESTS).as_posix()
    except ValueError:
        return False
    if metafunc.definition.get_closest_marker("direct_only") is not None:
        return False
    return relative.startswith(POOLED_SUITES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``backend`` over the selected backends (PgBouncer: pooled suites only)."""
    if "backend" not in metafunc.fixturenames:
        return
    if any(m.args and m.args[0] == "backend" for m in metafunc.definition.iter_markers("parametrize")):
        return  # the test chose its backends itself
    pooled = _runs_behind_pooler(metafunc)
    names = [n for n in selected_backends() if n in BACKENDS or (pooled and n == PGBOUNCER)]
    metafunc.parametrize("backend", names, indirect=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """End the run with the backends that tests really ran on."""
    ran = [n for n in ALL_BACKENDS if n in _ran]
    line = f"backends: {', '.join(ran) if ran else 'none'}"
    narrowed = os.environ.get("KIT_TEST_BACKENDS", "").strip()
    if narrowed:
        line += f" (narrowed by KIT_TEST_BACKENDS={narrowed})"
    terminalreporter.write_line(line)


@pytest.fixture
def backend(
    request: pytest.FixtureRequest, server_backends: dict[str, Backend | str], tmp_path: Path
) -> Backend:
    """The backend-matrix fixture: one test per backend (see :func:`pytest_generate_tests`)."""
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


@pytest.fixture
def replica_backend(server_backends: dict[str, Backend | str], tmp_path: Path) -> Backend:
    """This run's database on the streaming standby (127.0.0.1:5433): read-only, replayed
    from ``postgresql``. Unreachable: the test fails naming it (unless the run is narrowed)."""
    resolve_backend("postgresql", server_backends, tmp_path)
    return resolve_backend(REPLICA, server_backends, tmp_path)


@pytest.fixture(params=("postgresql", "mysql"))
def server_backend(
    request: pytest.FixtureRequest, server_backends: dict[str, Backend | str], tmp_path: Path
) -> Backend:
    """The server half of the matrix, for tests of server-only behaviour."""
    return resolve_backend(request.param, server_backends, tmp_path)
