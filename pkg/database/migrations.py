"""Running Alembic migrations safely: one migrator at a time, bounded lock waits, exact autogenerate.

Example (an Alembic ``env.py``)::

    def do_run_migrations(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          **autogenerate_options(connection.dialect.name))
        with migration_lock(connection, wait=120, lock_timeout=5):
            with context.begin_transaction():
                context.run_migrations()

* :func:`migration_lock` holds a database-wide lock for the block, so many instances
  starting at once migrate one after the other (PostgreSQL ``pg_advisory_lock``,
  MariaDB/MySQL ``GET_LOCK``; SQLite needs none). Waiting longer than ``wait`` seconds
  raises :class:`~pkg.database.errors.MigrationLockTimeoutError`. Inside the block every
  statement waits at most ``lock_timeout`` seconds for a table or row lock (PostgreSQL
  ``lock_timeout``, MariaDB ``lock_wait_timeout`` and ``innodb_lock_wait_timeout``), so an
  ``ALTER`` stuck behind a long transaction fails with
  :class:`~pkg.database.errors.LockTimeoutError` instead of stalling all traffic behind it.
  The connection's previous timeouts are restored and the lock released afterwards.
* :func:`autogenerate_options` makes ``alembic revision --autogenerate`` / ``alembic check``
  exact: types and server defaults compared, batch mode on SQLite, and the kit's types
  rendered as ``JSONType()``, ``UTCDateTime()``, ``BigIntPK`` imported from ``pkg.database``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Identity, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from pkg.database.errors import (
    DatabaseError,
    LockTimeoutError,
    MigrationError,
    MigrationLockTimeoutError,
    translate_error,
)
from pkg.database.types import BigIntPK, JSONType, UTCDateTime

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext
    from alembic.runtime.migration import MigrationContext

__all__ = ["autogenerate_options", "migration_lock", "render_kit_type"]

logger = logging.getLogger(__name__)

DEFAULT_LOCK_KEY = "alembic"


class _NoLock:
    """SQLite (one writer at a time anyway) and backends without a lock here: nothing to do."""

    def acquire(self, conn: Connection, key: str, wait: float) -> bool:
        return True

    def release(self, conn: Connection, key: str) -> None:
        return None

    def timeouts(self, conn: Connection) -> tuple[Any, ...]:
        return ()

    def set_timeouts(self, conn: Connection, values: tuple[Any, ...]) -> None:
        return None

    def for_seconds(self, seconds: float) -> tuple[Any, ...]:
        return ()


class _PostgresLock(_NoLock):
    """A session-level advisory lock; waits are bounded by ``lock_timeout`` (SQLSTATE 55P03)."""

    @staticmethod
    def _key(key: str) -> int:  # advisory locks are per database already
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)

    def acquire(self, conn: Connection, key: str, wait: float) -> bool:
        self.set_timeouts(conn, self.for_seconds(wait))
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self._key(key)})
        return True

    def release(self, conn: Connection, key: str) -> None:
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key(key)})

    def timeouts(self, conn: Connection) -> tuple[Any, ...]:
        return (conn.execute(text("SELECT current_setting('lock_timeout')")).scalar_one(),)

    def set_timeouts(self, conn: Connection, values: tuple[Any, ...]) -> None:
        conn.execute(text("SELECT set_config('lock_timeout', :value, false)"), {"value": values[0]})

    def for_seconds(self, seconds: float) -> tuple[Any, ...]:
        return (f"{max(1, math.ceil(seconds * 1000))}ms",)


class _MySQLLock(_NoLock):
    """``GET_LOCK`` on a name derived from the current database (the name is server-wide)."""

    _NAME = "SHA1(CONCAT(:key, '@', DATABASE()))"

    def acquire(self, conn: Connection, key: str, wait: float) -> bool:
        got = conn.execute(text(f"SELECT GET_LOCK({self._NAME}, :wait)"), {"key": key, "wait": wait})
        return got.scalar() == 1

    def release(self, conn: Connection, key: str) -> None:
        conn.execute(text(f"SELECT RELEASE_LOCK({self._NAME})"), {"key": key})

    def timeouts(self, conn: Connection) -> tuple[Any, ...]:
        sql = "SELECT @@SESSION.lock_wait_timeout, @@SESSION.innodb_lock_wait_timeout"
        return tuple(conn.execute(text(sql)).one())

    def set_timeouts(self, conn: Connection, values: tuple[Any, ...]) -> None:
        sql = "SET SESSION lock_wait_timeout = :mdl, SESSION innodb_lock_wait_timeout = :row"
        conn.execute(text(sql), {"mdl": int(values[0]), "row": int(values[1])})

    def for_seconds(self, seconds: float) -> tuple[Any, ...]:
        whole = max(1, math.ceil(seconds))  # both settings take whole seconds
        return (whole, whole)


_LOCKS: dict[str, _NoLock] = {"postgresql": _PostgresLock(), "mysql": _MySQLLock()}


def _typed(exc: BaseException) -> BaseException:
    """The kit's typed error for a driver error (chained by the caller), else ``exc``."""
    return translate_error(exc) if isinstance(exc, sa_exc.SQLAlchemyError) else exc


def _acquire(conn: Connection, lock: _NoLock, key: str, wait: float) -> None:
    try:
        acquired = lock.acquire(conn, key, wait)
    except sa_exc.DBAPIError as exc:
        typed = _typed(exc)
        if isinstance(typed, LockTimeoutError):
            raise MigrationLockTimeoutError(_waited_message(wait)) from exc
        raise typed from exc
    if not acquired:
        raise MigrationLockTimeoutError(_waited_message(wait))


def _waited_message(wait: float) -> str:
    return (
        f"another process held the migration lock for more than {wait:g}s; it is still "
        "migrating or stuck: retry, or raise the wait"
    )


def _release(conn: Connection, lock: _NoLock, key: str, saved: tuple[Any, ...], owned: bool) -> None:
    """Restore the timeouts and unlock; if that fails, drop the connection (and the lock with it)."""
    try:
        if owned and conn.in_transaction():
            conn.rollback()  # a failed body may have left an aborted transaction
        if saved:
            lock.set_timeouts(conn, saved)
        lock.release(conn, key)
        if owned:
            conn.commit()
    except sa_exc.SQLAlchemyError as exc:
        logger.warning("migration lock release failed (%s); discarding the connection", type(exc).__name__)
        conn.invalidate()


@contextmanager
def migration_lock(
    connection: Connection,
    *,
    wait: float = 60.0,
    lock_timeout: float | None = 5.0,
    key: str = DEFAULT_LOCK_KEY,
) -> Iterator[None]:
    """Hold the migration lock of ``connection``'s database for the block.

    ``wait``: seconds to wait for another migrator (:class:`MigrationLockTimeoutError`).
    ``lock_timeout``: seconds any statement in the block waits for a table/row lock
    (:class:`LockTimeoutError`); None leaves the server's setting. Driver errors raised in
    the block arrive typed (``pkg.database.errors``), the original as ``__cause__``.
    """
    if wait <= 0 or (lock_timeout is not None and lock_timeout <= 0):
        raise MigrationError(f"wait and lock_timeout must be positive, got {wait!r} and {lock_timeout!r}")
    lock = _LOCKS.get(connection.dialect.name, _NoLock())
    owned = not connection.in_transaction()  # else the caller's transaction: never commit it
    saved = lock.timeouts(connection)
    try:
        _acquire(connection, lock, key, wait)
        lock.set_timeouts(connection, lock.for_seconds(lock_timeout) if lock_timeout else saved)
    except BaseException:
        _release(connection, lock, key, saved, owned)
        raise
    if owned:
        connection.commit()  # the lock is the session's; the migrations get a fresh transaction
    logger.debug("migration lock held (%s)", connection.dialect.name)
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        typed = _typed(exc)
        if typed is exc or not isinstance(typed, DatabaseError):
            raise
        raise typed from exc
    finally:
        _release(connection, lock, key, saved, owned)


def render_kit_type(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Alembic ``render_item`` hook: the kit's column types as importable ``pkg.database`` names."""
    if type_ != "type":
        return False
    if obj is BigIntPK:
        name, rendered = "BigIntPK", "BigIntPK"
    elif isinstance(obj, JSONType | UTCDateTime):
        name = type(obj).__name__
        rendered = f"{name}()"
    else:
        return False
    autogen_context.imports.add(f"from pkg.database import {name}")
    return rendered


def _without_identity_noise(op: Any) -> bool:
    """Strip an ``Identity()`` "server default" change from ``op``; False when nothing is left."""
    from alembic.operations import ops

    if isinstance(op, ops.ModifyTableOps):
        op.ops = [o for o in op.ops if _without_identity_noise(o)]
        return bool(op.ops)
    identity = isinstance(op, ops.AlterColumnOp) and (
        isinstance(op.modify_server_default, Identity) or isinstance(op.existing_server_default, Identity)
    )
    if identity and op.modify_server_default is not False:
        op.modify_server_default = False
        return bool(op.has_changes())
    return True


def drop_identity_noise(context: MigrationContext, revision: Any, directives: list[Any]) -> None:
    """Alembic ``process_revision_directives`` hook: where the backend has no identity columns
    (SQLite; MariaDB uses AUTO_INCREMENT) the model's ``Identity()`` is not a schema change."""
    if context.dialect.supports_identity_columns:
        return
    for script in directives:
        for container in [*script.upgrade_ops_list, *script.downgrade_ops_list]:
            container.ops = [o for o in container.ops if _without_identity_noise(o)]


def autogenerate_options(dialect_name: str) -> dict[str, Any]:
    """Keyword arguments for ``context.configure`` that keep autogenerate exact."""
    return {
        "compare_type": True,
        "compare_server_default": True,
        "process_revision_directives": drop_identity_noise,
        "render_as_batch": dialect_name == "sqlite",  # SQLite ALTERs by copying the table
        "render_item": render_kit_type,
    }
