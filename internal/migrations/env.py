"""Alembic environment: the kit's settings, the models' metadata, one migrator at a time.

* ``alembic upgrade head`` (``make migrate``): online, on ``DB_DIRECT_URL`` when set (past
  PgBouncer: the advisory lock needs a session of its own), else on the configured database.
* Code already inside an event loop (tests, the app's start) passes a *sync* connection in
  ``config.attributes["connection"]`` (``internal/infra/migrations.py`` does this for you).
* ``alembic upgrade head --sql``: the SQL for the configured dialect, offline.

Every online run holds the migration lock (``pkg.database.migration_lock``) and runs its
statements with a lock timeout (``DB_MIGRATION_LOCK_TIMEOUT``, default 5 s).
"""

from __future__ import annotations

import asyncio
import logging

from alembic import context
from sqlalchemy.engine import Connection

import internal.models  # noqa: F401  (every table registered on Base.metadata)
from internal.config.load_config import Settings, get_settings
from internal.infra.migrations import migration_engine
from pkg.database import Base, autogenerate_options, migration_lock
from pkg.database.errors import MigrationError

config = context.config
target_metadata = config.attributes.get("target_metadata", Base.metadata)  # tests may compare another


def _settings() -> Settings:
    given = config.attributes.get("settings")
    return given if isinstance(given, Settings) else get_settings()


def run_migrations_offline() -> None:
    settings = _settings()  # nothing connects: any configured URL names the dialect
    url = settings.direct_database_url or settings.database_url
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **autogenerate_options(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    if not isinstance(connection, Connection):
        raise MigrationError(
            'config.attributes["connection"] must be a sync Connection: from async code use '
            "`await async_conn.run_sync(...)` (see internal/infra/migrations.py)"
        )
    settings = _settings()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        **autogenerate_options(connection.dialect.name),
    )
    wait, timeout = settings.db_migration_lock_wait, settings.db_migration_lock_timeout
    with migration_lock(connection, wait=wait, lock_timeout=timeout), context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = migration_engine(_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
elif (given := config.attributes.get("connection")) is not None:
    do_run_migrations(given)
else:  # the alembic CLI: say what it does unless the host configured logging
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s [%(name)s] %(message)s")
        for chatty in ("alembic.runtime.plugins", "pkg.database.pool", "sqlalchemy.pool"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    asyncio.run(run_async_migrations())
