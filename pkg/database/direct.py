"""Session-less own reads: when a DAO call may read on a bare connection, and that connection.

A DAO or builder read that opens its own session only needs a connection: it sends SELECTs
and closes. Skipping the ``AsyncSession`` (its transaction bookkeeping, the ORM execution
context, one greenlet hop per awaited call) halves the client CPU of a primary-key read.
:func:`direct_engine` allows it only where the result cannot differ from the session's:

* the provider is a plain ``async_sessionmaker`` (``new_async_session_maker``) bound to one
  ``AsyncEngine``, of ``AsyncSession``, without options that change how statements run; or
  a provider object whose ``session_maker`` attribute is such a maker, the one its sessions
  come from (the app's ``get_session``);
* no listener on its Session class (``do_orm_execute`` may rewrite statements,
  ``after_begin`` may set a tenant, ...): those run on the session path;
* no replicas for that engine (routing picks the engine per read session);

and the caller checks that the call joins no transaction (``session=``, ``transaction()``).
Rows become instances through :class:`~pkg.database.query.hydrate.Hydrator`. The connection
gets what the session would have: AUTOCOMMIT on PostgreSQL (not behind PgBouncer); on the
kit's MySQL/MariaDB engines each read statement runs alone and a lone INSERT/DELETE commits
by itself, any other write statement inside BEGIN ... COMMIT (:mod:`pkg.database.reset`);
else a transaction that closing rolls back. Errors become the kit's typed errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.util import greenlet_spawn

from pkg.database.errors import translate_error
from pkg.database.query.limits import autocommit_reads, autocommit_writes, dbapi_autocommit
from pkg.database.reset import READ, WRITE, marked
from pkg.database.routing.router import has_router
from pkg.database.utils import behind_pooler

__all__ = ["direct_engine", "read_on", "reset_session_hooks_cache", "write_on"]

T = TypeVar("T")

_SAFE_OPTIONS = frozenset({"bind", "autoflush", "expire_on_commit", "info"})
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}
_MYSQL = frozenset({"mysql", "mariadb"})


def direct_engine(provider: Any) -> AsyncEngine | None:
    """The engine a session-less call of ``provider`` may use, or None (see module doc)."""
    maker = provider if isinstance(provider, async_sessionmaker) else getattr(provider, "session_maker", None)
    if not isinstance(maker, async_sessionmaker) or maker.class_ is not AsyncSession:
        return None
    options = maker.kw
    bind = options.get("bind")
    if not isinstance(bind, AsyncEngine) or not options.keys() <= _SAFE_OPTIONS:
        return None
    if _session_hooks() or has_router(bind):
        return None
    return bind


def _session_hooks() -> bool:
    """True when the Session class has any listener (``do_orm_execute`` may rewrite the
    statement, ``after_begin`` may ``SET`` a tenant, ``loaded_as_persistent`` sees each row...):
    the session path then runs them."""
    return any(_class_listeners())


_listeners: list[Any] = []


def _class_listeners() -> list[Any]:
    """The Session class's listener collections, one per event (live: SQLAlchemy updates them
    in place on ``event.listen`` / ``event.remove``), gathered once from a bare Session."""
    if not _listeners:
        dispatch: Any = AsyncSession.sync_session_class().dispatch
        _listeners.extend(getattr(dispatch, name).parent_listeners for name in dispatch._event_names)
    return _listeners


def reset_session_hooks_cache() -> None:
    """Forget the gathered listener collections (they are gathered again on next use): for
    tests that replace the Session class's dispatch."""
    _listeners.clear()


async def read_on(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """``work(connection)`` on a bare connection to read on, as the own read session would
    have it (on the kit's MySQL engines each statement runs alone); it COMMITs only if
    ``work`` does. Checkout to checkin run in ONE greenlet hop: ``work`` is synchronous
    (``conn.execute(stmt, params).all()``); SQLAlchemy awaits the driver inside it::

        rows = await read_on(engine, lambda conn: conn.execute(stmt, params).all())
    """
    return await _spawned(_read, engine, work)


async def write_on(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """``work(connection)`` for ONE own write statement, as the own write session runs it:
    AUTOCOMMIT where one statement is atomic and that saves BEGIN and COMMIT (PostgreSQL, not
    behind PgBouncer), else a transaction committed when ``work`` returns. Both end in
    ``commit()``: the engine's ``commit`` listeners (read-your-writes marks) hear it."""
    return await _spawned(_write, engine, work)


def _read(sync_engine: Engine, work: Callable[[Connection], T]) -> T:
    autocommit = autocommit_reads(sync_engine.dialect.name) and not behind_pooler(sync_engine)
    with sync_engine.connect() as conn:
        if autocommit:
            return _autocommitted(conn, work, commit=False)
        if sync_engine.dialect.name in _MYSQL:  # kit engines: each SELECT alone, no BEGIN/ROLLBACK
            with marked(conn, READ):
                return work(conn)
        return work(conn)


def _write(sync_engine: Engine, work: Callable[[Connection], T]) -> T:
    if autocommit_writes(sync_engine.dialect.name) and not behind_pooler(sync_engine):
        with sync_engine.connect() as conn:
            return _autocommitted(conn, work, commit=True)
    if sync_engine.dialect.name in _MYSQL:  # kit engines: a lone INSERT/DELETE without BEGIN/COMMIT
        with sync_engine.connect() as conn, marked(conn, WRITE), conn.begin():
            return work(conn)
    with sync_engine.begin() as conn:
        return work(conn)


def _autocommitted(conn: Connection, work: Callable[[Connection], T], *, commit: bool) -> T:
    """``work`` in AUTOCOMMIT for this checkout: the DBAPI connection's own switch where it
    costs no I/O (``limits.dbapi_autocommit``), else SQLAlchemy's ``isolation_level``.
    ``commit``: end in ``commit()`` (sends nothing; the engine's ``commit`` listeners hear it)."""
    if not dbapi_autocommit(conn.dialect.driver):
        done = work(conn.execution_options(**_AUTOCOMMIT))
    else:
        dbapi: Any = conn.connection.dbapi_connection
        dbapi.autocommit = True
        try:
            done = work(conn)
        finally:
            dbapi.autocommit = False  # back to the pool's isolation level before checkin
    if commit:
        conn.commit()
    return done


async def _spawned(
    step: Callable[[Engine, Callable[[Connection], T]], T], engine: AsyncEngine, work: Any
) -> T:
    """``step`` in one greenlet (what each ``AsyncConnection`` call would spawn), with driver
    and SQLAlchemy errors raised as the kit's typed errors, cause kept. A cancellation
    inside closes the connection on the way out (the pool returns it even if cancelled
    again meanwhile)."""
    try:
        return await greenlet_spawn(step, engine.sync_engine, work)
    except Exception as exc:
        translated = translate_error(exc)
        if translated is not exc:
            raise translated from exc
        raise
