"""Pool reset without a round trip when there is provably nothing to roll back (MySQL/MariaDB).

A pooled connection goes back with a ROLLBACK (SQLAlchemy's ``pool_reset_on_return``), so
no transaction or read view leaks into the next checkout. An ORM session ends its own
transaction first (COMMIT or ROLLBACK) and only then returns the connection, so on
aiomysql every own-session call paid one more ROLLBACK round trip (asyncpg's adapter
already skips a rollback outside a transaction).

The kit's MySQL/MariaDB engines skip a ROLLBACK only when the driver proves it is a no-op:
the connection's last COMMIT or ROLLBACK succeeded and not one command went to the server
since. Every command the driver sends is counted (a wrapper around the driver's single
command entry point, installed per connection at connect), so a query run any way at all
(SQLAlchemy, a raw cursor, a failed statement) makes the next ROLLBACK real. A driver
without that entry point is rolled back as before. The session's own ROLLBACK after a
read is never skipped: under REPEATABLE READ it releases the read view.

Example::

    attach_cheap_reset(engine.sync_engine)   # new_async_engine does this
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["attach_cheap_reset"]

_DIALECTS = frozenset({"mysql", "mariadb"})
_SENT = "pkg_database_sent"  # record.info: [commands sent on this DBAPI connection]
_CLEAN = "pkg_database_clean"  # record.info: that count right after a successful COMMIT/ROLLBACK


def _count_commands(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Count every command the driver sends (aiomysql: ``_execute_command``)."""
    record.info.pop(_CLEAN, None)
    driver = record.driver_connection
    send = getattr(driver, "_execute_command", None)
    if send is None:
        return
    sent = [0]

    async def counted(command: Any, sql: Any) -> Any:
        sent[0] += 1
        return await send(command, sql)

    try:
        driver._execute_command = counted  # type: ignore[union-attr]
    except (AttributeError, TypeError):  # a compiled driver: no proof, always roll back
        return
    record.info[_SENT] = sent


def _info(fairy: Any) -> dict[str, Any] | None:
    """The pool record's info of a checked-out connection; None for ad-hoc wrappers."""
    try:
        return getattr(fairy, "info", None)
    except NotImplementedError:  # first_connect's ad-hoc proxy has no record
        return None


def _wrap(commit: Callable[[Any], None], rollback: Callable[[Any], None]) -> tuple[Any, Any]:
    def ended(info: dict[str, Any] | None) -> None:
        sent = info.get(_SENT) if info is not None else None
        if sent is not None:
            info[_CLEAN] = sent[0]  # type: ignore[index]

    def do_commit(fairy: Any) -> None:
        info = _info(fairy)
        if info is not None:
            info.pop(_CLEAN, None)  # a failed COMMIT leaves it unmarked
        commit(fairy)
        ended(info)

    def do_rollback(fairy: Any) -> None:
        info = _info(fairy)
        if info is not None:
            sent, clean = info.get(_SENT), info.pop(_CLEAN, None)
            if sent is not None and clean == sent[0]:
                info[_CLEAN] = clean
                return  # nothing sent since the last COMMIT/ROLLBACK: no transaction is open
        rollback(fairy)
        ended(info)

    return do_commit, do_rollback


def attach_cheap_reset(engine: Engine) -> bool:
    """Make ``engine``'s dialect skip provably empty ROLLBACKs; False where it does not apply.

    Only this engine and its dialect instance change (MySQL/MariaDB); nothing global.
    """
    dialect = engine.dialect
    if dialect.name not in _DIALECTS:
        return False
    event.listen(engine, "connect", _count_commands)
    commit, rollback = _wrap(dialect.do_commit, dialect.do_rollback)
    dialect.do_commit = commit  # type: ignore[method-assign]
    dialect.do_rollback = rollback  # type: ignore[method-assign]
    return True
