"""The reference web application: FastAPI over the kit's DAOs, with a graceful drain.

Example::

    $ make run                                    # dev: SQLite dev.db, migrations applied
    $ uvicorn internal.app:app --timeout-graceful-shutdown 10

    app = create_app(settings)                    # or build your own app the same way

Importing this module builds the routes only: settings are read, the engine is created and
the schema checked (migrated with ``APP_MIGRATE_ON_START``) in the lifespan startup; the
shutdown drains and disposes the pool.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from internal.config.load_config import Settings, get_settings
from internal.infra.database import close_async_db, init_async_db
from internal.infra.metrics import setup_metrics, teardown_metrics
from internal.infra.migrations import current_revision, ensure_schema, stamp
from internal.models import User
from internal.web import diagnostics, health, metrics, users
from internal.web.consistency import ConsistencyMiddleware
from internal.web.drain import DrainMiddleware, DrainState, install_drain_signals
from internal.web.errors import install_error_handlers
from internal.web.options import WebOptions
from pkg.database import Base
from pkg.database.errors import TransientDatabaseError, translate_error

__all__ = ["app", "configure_logging", "create_app", "create_tables", "prepare_schema"]

MODELS = (User,)  # imported so Base.metadata knows the users table

logger = logging.getLogger(__name__)


LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Root logging at ``LOG_LEVEL`` unless the host (uvicorn CLI, tests) already configured it."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
        # SQLAlchemy's per-pool INFO chatter ("Pool disposed", "Pool recreating") is echo_pool's job.
        for name in ("sqlalchemy.pool", "pkg.database.pool"):
            logging.getLogger(name).setLevel(max(root.level, logging.WARNING))


async def create_tables(engine: AsyncEngine) -> None:
    """``CREATE TABLE IF NOT EXISTS`` for every model, then stamp an unversioned database at head.

    A test and throwaway-database convenience (``APP_CREATE_TABLES``); real schemas come from
    migrations (``make migrate``). The stamp records that the tables match the models.
    """
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    if await current_revision(engine) is None:
        await stamp(engine)
    logger.info("tables ensured: %s", ", ".join(sorted(Base.metadata.tables)))


async def prepare_schema(settings: Settings, engine: AsyncEngine, *, migrate: bool) -> None:
    """The schema check at start: at head, migrated, or a clear SchemaOutOfDateError.

    An unreachable database is not a startup failure: ``/health/db`` reports it until it is back.
    """
    try:
        await ensure_schema(settings, engine, migrate=migrate)
    except Exception as exc:
        typed = translate_error(exc)
        if not isinstance(typed, TransientDatabaseError):
            raise
        logger.warning("database unreachable at start (%s): schema not checked", type(typed).__name__)


async def _close_database(settings: Settings) -> None:
    report = await close_async_db(settings.db_shutdown_timeout)
    if report is not None and (report.forced or report.checked_out):
        logger.warning(
            "pool disposal: %d connection(s) still checked out, %d forced closed",
            report.checked_out,
            report.forced,
        )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.given_settings or get_settings()
    configure_logging(settings)
    options = WebOptions.load(settings)
    app.state.settings, app.state.options = settings, options
    setup_metrics(settings)  # before the engine: it reports from its first connection
    db = await init_async_db(settings)
    try:
        if options.create_tables:
            await create_tables(db.engine)
        await prepare_schema(settings, db.engine, migrate=options.migrate_on_start)
    except BaseException:
        await _close_database(settings)  # a failed startup leaves no pool behind
        raise
    drain: DrainState = app.state.drain
    uninstall = install_drain_signals(drain)
    logger.info("web app ready (env=%s, diagnostics=%s)", settings.app_env, options.diagnostics)
    try:
        yield
    finally:
        uninstall()
        drain.start_drain("lifespan shutdown")
        await drain.settle()
        drain.log_summary()
        await _close_database(settings)
        teardown_metrics()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` default to :func:`get_settings` at startup.

    Example: ``uvicorn.run(create_app(load_settings("prod")), port=8000)``
    """
    app = FastAPI(
        title="async-data-kit reference app",
        version="0.1.0",
        summary="Users CRUD over the kit's DAOs, health checks and a graceful drain.",
        lifespan=_lifespan,
    )
    app.state.given_settings = settings
    app.state.settings = settings
    app.state.options = None
    app.state.drain = DrainState()
    app.add_middleware(ConsistencyMiddleware)  # read-your-writes scope per request (replicas)
    app.add_middleware(DrainMiddleware, state=app.state.drain)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(users.router)
    app.include_router(diagnostics.router)
    app.include_router(metrics.router)
    return app


app = create_app()
