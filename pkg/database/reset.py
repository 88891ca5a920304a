"""MySQL/MariaDB kit engines: explicit transactions on autocommit connections, so a lone
statement costs one round trip and no COMMIT/ROLLBACK is sent when nothing is open.
(SQLite through aiosqlite: only the last part, see :func:`_skip_idle_ends`.)

With the driver's autocommit off (SQLAlchemy's default on aiomysql) every statement opens
an implicit transaction (a REPEATABLE READ view, metadata locks) that must be ended: an
own read paid SELECT + ROLLBACK, an own insert statement + COMMIT. The kit's MySQL/MariaDB
engines instead keep each connection in driver autocommit and make every SQLAlchemy
transaction real with an explicit ``BEGIN`` in the dialect's ``do_begin`` (ORM sessions,
``transaction()``, ``engine.begin()``: same atomicity and snapshot as before, +1 round trip
for the BEGIN), except on a connection :func:`marked` marked for the current
checkout (:mod:`pkg.database.direct`):

* ``READ``: no BEGIN; each statement runs alone (the statement's own snapshot);
* ``WRITE``: the BEGIN is decided at the first statement: one INSERT, UPDATE or DELETE
  (not an executemany) runs alone (atomic by itself); anything else gets the BEGIN first,
  and so does any statement after one that ran alone.

Inside a transaction, a statement the server says runs outside one (after a DDL's implicit
COMMIT, say) gets a new BEGIN first, as with autocommit off.

``COMMIT`` and ``ROLLBACK`` are skipped when the server's own status, from the reply to
the last command, says the session is in autocommit and not in a transaction (a
``BEGIN`` sent any way at all, even as raw SQL, sets that flag), and that last command was
fully answered; a failed or interrupted command makes the next ROLLBACK real. A user's
``isolation_level="AUTOCOMMIT"`` sends no BEGIN; resetting the isolation level at checkin
keeps the session in autocommit (``SET SESSION TRANSACTION ISOLATION LEVEL`` only). A
driver that cannot be instrumented (no ``query`` / ``_execute_command`` to wrap) keeps
SQLAlchemy's behaviour. Only this engine's dialect instance changes; nothing global.

Example::

    attach_cheap_reset(engine.sync_engine)   # new_async_engine does this
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["READ", "WRITE", "attach_cheap_reset", "marked", "reading"]

_DIALECTS = frozenset({"mysql", "mariadb"})
_STATE = "_pkg_database_txn"  # attribute of the driver connection
_IN_TRANS, _AUTOCOMMIT = 1, 2  # SERVER_STATUS flags of the MySQL protocol
Mark = Literal["read", "write"]
READ: Mark = "read"
WRITE: Mark = "write"


class _State:
    """Per DBAPI connection: what the kit knows beyond the server's status flags."""

    __slots__ = ("decide", "mark", "settled", "user_autocommit")

    def __init__(self) -> None:
        self.mark: Mark | None = None  # set by mark_connection for one checkout
        self.decide = False  # WRITE: BEGIN or not is decided at the next statement
        self.settled = False  # the last command sent was fully answered
        self.user_autocommit = False  # isolation_level="AUTOCOMMIT": never BEGIN


def _state_of(fairy: Any) -> _State | None:
    try:
        driver = fairy.driver_connection
    except (AttributeError, NotImplementedError):
        return None
    state: _State | None = getattr(driver, _STATE, None)
    return state


def _instrument(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """At connect: wrap the driver's command entry points, then switch to autocommit."""
    driver = record.driver_connection
    send, query = getattr(driver, "_execute_command", None), getattr(driver, "query", None)
    if send is None or query is None or not hasattr(driver, "server_status"):
        return
    state = _State()

    async def sent(command: Any, sql: Any) -> Any:
        state.settled = False
        return await send(command, sql)

    async def answered(sql: Any, unbuffered: bool = False) -> Any:
        result = await query(sql, unbuffered)
        state.settled = True  # the reply (OK or result header) updated server_status
        return result

    try:
        driver._execute_command = sent  # type: ignore[union-attr]
        driver.query = answered  # type: ignore[union-attr]
        setattr(driver, _STATE, state)
    except (AttributeError, TypeError):  # a compiled driver: SQLAlchemy's behaviour
        return
    # AUTOCOMMIT asked at connect (connect_args, the engine's isolation_level): never BEGIN
    state.user_autocommit = bool(getattr(driver, "autocommit_mode", False))
    dbapi_connection.autocommit(True)


def _idle(fairy: Any, state: _State) -> bool:
    """The server said (last reply, fully read): autocommit on, no transaction open."""
    status = fairy.driver_connection.server_status or 0
    return state.settled and status & (_IN_TRANS | _AUTOCOMMIT) == _AUTOCOMMIT


def _send_begin(fairy: Any) -> None:
    cursor = fairy.dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN")
    finally:
        cursor.close()


def _wrap_ends(commit: Callable[[Any], None], rollback: Callable[[Any], None]) -> tuple[Any, Any, Any]:
    def do_begin(fairy: Any) -> None:
        state = _state_of(fairy)
        if state is None or state.user_autocommit or state.mark == READ:
            return
        if state.mark == WRITE:
            state.decide = True
            return
        _send_begin(fairy)

    def ending(end: Callable[[Any], None]) -> Callable[[Any], None]:
        def do_end(fairy: Any) -> None:  # COMMIT or ROLLBACK: skipped when nothing is open
            state = _state_of(fairy)
            if state is not None:
                state.decide = False
                if _idle(fairy, state):
                    return
            end(fairy)
            if state is not None:
                state.settled = True  # answered OK: the status flags are current

        return do_end

    do_commit, do_rollback = ending(commit), ending(rollback)
    return do_begin, do_commit, do_rollback


def _wrap_isolation(original: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    def set_isolation_level(dbapi_connection: Any, level: Any) -> None:
        state: _State | None = getattr(dbapi_connection.driver_connection, _STATE, None)
        if state is None:
            original(dbapi_connection, level)
            return
        state.user_autocommit = level == "AUTOCOMMIT"
        dbapi_connection.autocommit(True)  # sends nothing when the session already is
        if level != "AUTOCOMMIT":
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {level}")
            finally:
                cursor.close()

    return set_isolation_level


def _begin_if_needed(conn: Connection, context: Any, executemany: bool) -> None:
    """Keep each statement of a SQLAlchemy transaction inside a server transaction.

    WRITE-marked connection: its first statement runs alone if it is one INSERT, UPDATE or
    DELETE, else a BEGIN goes first. Any transaction the server says is no longer open (a
    DDL's implicit COMMIT, a lone statement before) gets a new BEGIN, as autocommit off did."""
    fairy = conn.connection
    state = _state_of(fairy)
    if state is None or state.user_autocommit or state.mark == READ:
        return
    if state.decide:  # WRITE: the transaction's first statement
        state.decide = False
        if not executemany and (context.isinsert or context.isupdate or context.isdelete):
            return
        _send_begin(fairy)
    elif _idle(fairy, state):
        _send_begin(fairy)


# Dialect-level hooks (as the slow-query monitor uses): an engine-level before_cursor_execute
# listener would switch SQLAlchemy to its slower per-statement event path (~110 us per get
# measured on aiomysql). Returning None leaves the statement to the next hook or the dialect.
def _on_execute(cursor: Any, statement: Any, parameters: Any, context: Any) -> None:
    _begin_if_needed(context.root_connection, context, False)


def _on_executemany(cursor: Any, statement: Any, parameters: Any, context: Any) -> None:
    _begin_if_needed(context.root_connection, context, True)


def _on_execute_no_params(cursor: Any, statement: Any, context: Any) -> None:
    _begin_if_needed(context.root_connection, context, False)


@contextmanager
def marked(conn: Connection, mark: Mark) -> Iterator[None]:
    """Mark ``conn``'s DBAPI connection inside the block (enter before the transaction
    begins); a no-op on a connection the kit did not instrument."""
    state = _state_of(conn.connection)
    if state is None:
        yield
        return
    state.mark, state.decide = mark, False
    try:
        yield
    finally:
        state.mark, state.decide = None, False


_reading: ContextVar[bool] = ContextVar("pkg_database_reading", default=False)


@contextmanager
def reading() -> Iterator[None]:
    """Connections this task checks out inside the block are ``READ``-marked: an own read
    session (``CallSession.read``) sends each SELECT alone, as the session-less reads do."""
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def _on_engine_connect(conn: Connection) -> None:
    """Each checkout starts unmarked, or ``READ`` inside :func:`reading`."""
    state = _state_of(conn.connection)
    if state is not None:
        state.mark, state.decide = (READ if _reading.get() else None), False


def _skip_idle_ends(end: Callable[[Any], None]) -> Any:
    """SQLite through aiosqlite: COMMIT/ROLLBACK only when the database says a transaction
    is open (``in_transaction``, read live from sqlite3): sqlite3 itself does nothing
    otherwise, but each call costs a hop to aiosqlite's thread (an own read's reset)."""

    def do_end(fairy: Any) -> None:
        if getattr(getattr(fairy, "driver_connection", None), "in_transaction", None) is False:
            return
        end(fairy)

    return do_end


def attach_cheap_reset(engine: Engine) -> bool:
    """Install the above on ``engine``'s dialect instance; False where it does not apply."""
    dialect = engine.dialect
    if dialect.name == "sqlite" and dialect.driver == "aiosqlite":
        dialect.do_commit = _skip_idle_ends(dialect.do_commit)  # type: ignore[method-assign]
        dialect.do_rollback = _skip_idle_ends(dialect.do_rollback)  # type: ignore[method-assign]
        return True
    if dialect.name not in _DIALECTS:
        return False
    event.listen(engine, "connect", _instrument)
    event.listen(engine, "do_execute", _on_execute)  # before the monitor's: attached first
    event.listen(engine, "do_executemany", _on_executemany)
    event.listen(engine, "do_execute_no_params", _on_execute_no_params)
    event.listen(engine, "engine_connect", _on_engine_connect)
    begin, commit, rollback = _wrap_ends(dialect.do_commit, dialect.do_rollback)
    dialect.do_begin = begin  # type: ignore[method-assign]
    dialect.do_commit = commit  # type: ignore[method-assign]
    dialect.do_rollback = rollback  # type: ignore[method-assign]
    isolation = _wrap_isolation(dialect.set_isolation_level)
    dialect.set_isolation_level = isolation  # type: ignore[method-assign,assignment]
    return True
