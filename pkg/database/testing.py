"""Test helpers for applications using the kit.

Example::

    async def test_handler_returns_its_connection(engine):
        await handler()
        assert_no_checked_out_connections(engine)

Rollback per test: everything a test writes, commits included, is gone afterwards::

    @pytest.fixture
    async def session_maker(engine):
        async with rollback_after(engine) as maker:   # or rollback_after(database)
            yield maker                                # UserDao(session_provider=maker) ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from pkg.database.database import Database
from pkg.database.direct import reset_session_hooks_cache
from pkg.database.lifecycle.leaks import checked_out_connections
from pkg.database.pool import pool_status
from pkg.database.query.cursors import KeysetCodec
from pkg.database.query.lookups import reset_column_caches

__all__ = ["assert_no_checked_out_connections", "reset_kit_caches", "rollback_after"]

# How to really open the outer transaction, per dialect: pysqlite defers BEGIN to the first
# write, so a SAVEPOINT would open (and its RELEASE end) the whole transaction.
_EXPLICIT_BEGIN = {"sqlite": "BEGIN"}


@asynccontextmanager
async def rollback_after(target: AsyncEngine | Database) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Bind the kit to one outer transaction that is rolled back at the end of the block.

    Yields a session maker bound to one connection in that transaction, with
    ``join_transaction_mode="create_savepoint"``: a session's ``commit()`` releases a
    SAVEPOINT, so code under test may commit (DAO writes, ``transaction()``,
    ``execute_transaction``) and sees its own writes, and nothing persists. With a
    :class:`~pkg.database.Database`, its sessions (``db.session()``, ``db.read_session()``,
    hence an app's ``get_session``) use the same connection until the block ends; reads
    skip replicas, which could not see the uncommitted rows.

    One connection serves every session: use it from one task at a time. DDL inside the
    block commits implicitly on MySQL/MariaDB; create tables before it.
    """
    engine = target.engine if isinstance(target, Database) else target
    async with engine.connect() as conn:
        await conn.begin()
        explicit = _EXPLICIT_BEGIN.get(conn.dialect.name)
        if explicit:
            await conn.exec_driver_sql(explicit)
        maker = _bound_maker(conn)
        restore = _bind_database(target, maker) if isinstance(target, Database) else None
        try:
            yield maker
        finally:
            if restore is not None:
                restore()
            await conn.rollback()


def _bound_maker(conn: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=conn, class_=AsyncSession, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


def _bind_database(db: Database, maker: async_sessionmaker[AsyncSession]) -> Callable[[], None]:
    """Point ``db``'s session makers at ``maker`` (replicas off); return the undo."""
    saved = (db.session_maker, db.read_session_maker, db.router)
    db.session_maker = db.read_session_maker = maker
    db.router = None

    def restore() -> None:
        db.session_maker, db.read_session_maker, db.router = saved

    return restore


def assert_no_checked_out_connections(*engines: AsyncEngine) -> None:
    """Fail, naming each owner (task, call site, age), if any connection is still checked out."""
    problems = []
    for engine in engines:
        held = checked_out_connections(engine)
        counted = pool_status(engine)["checked_out"]
        if held or counted:
            owners = "; ".join(h.describe() for h in held) or "owners unknown"
            problems.append(f"{engine.url.render_as_string(hide_password=True)}: {counted} out ({owners})")
    if problems:
        raise AssertionError("connections still checked out: " + " | ".join(problems))


def reset_kit_caches() -> None:
    """Forget the kit's process-wide derived caches (column maps per model, the Session
    class's listener collections, keyset spec digests); each is rebuilt on next use. For tests that remap
    classes or swap the Session class's events; statement caches live on each DAO."""
    reset_column_caches()
    reset_session_hooks_cache()
    KeysetCodec.spec_hash_cache_clear()
