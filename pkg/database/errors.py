"""The kit's error hierarchy, and the one place driver errors are translated into it.

Every error the kit raises is a :class:`DatabaseError`. Errors translated from
SQLAlchemy or a driver keep the original as ``__cause__``::

    try:
        await dao.create(email="a@example.com")
    except DuplicateKeyError as exc:
        print(exc.constraint)  # e.g. "uq_users_email"

Hierarchy::

    DatabaseError
    ├── ConfigurationError            bad settings (names the key, never the password)
    ├── DatabaseNotInitializedError   get_session() before init_async_db()
    ├── QueryError                    the query itself is wrong
    │   ├── UnknownFieldError         unknown field / operator / sort name
    │   ├── UnsafeQueryError          UPDATE/DELETE without WHERE
    │   ├── InvalidCursorError        tampered or foreign keyset cursor
    │   └── InvalidValueError         the database refused a value (type, length, NUL byte)
    ├── NotFoundError                 no row where one was required
    ├── MultipleResultsError          more than one row where one was required
    ├── IntegrityViolationError       a constraint refused the write
    │   └── DuplicateKeyError         unique / primary key violation
    ├── StaleDataError                optimistic-lock (version) conflict
    ├── PoolTimeoutError              no connection free within pool_timeout
    └── TransientDatabaseError        safe to retry the whole transaction
        ├── ConnectionLostError       server went away / backend killed
        └── ConcurrencyConflictError  deadlock or serialization failure
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import exc as orm_exc

__all__ = [
    "ConcurrencyConflictError",
    "ConfigurationError",
    "ConnectionLostError",
    "DatabaseError",
    "DatabaseNotInitializedError",
    "DuplicateKeyError",
    "IntegrityViolationError",
    "InvalidCursorError",
    "InvalidValueError",
    "MultipleResultsError",
    "NotFoundError",
    "PoolTimeoutError",
    "QueryError",
    "StaleDataError",
    "TransientDatabaseError",
    "UnknownFieldError",
    "UnsafeQueryError",
    "translate_error",
]


class DatabaseError(Exception):
    """Base class of every error raised by the kit."""


class ConfigurationError(DatabaseError, ValueError):
    """Settings are missing or invalid; ``key`` names the offending setting."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DatabaseNotInitializedError(DatabaseError, RuntimeError):
    """A session was requested before the engine was initialised."""


class QueryError(DatabaseError):
    """The query, as asked for, is invalid."""


class UnknownFieldError(QueryError, ValueError):
    """An unknown field, lookup operator or sort name; lists the valid ones."""

    def __init__(self, name: str, valid: Sequence[str], *, kind: str = "field") -> None:
        self.name = name
        self.valid = tuple(valid)
        self.kind = kind
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(self.valid)}")


class UnsafeQueryError(QueryError):
    """UPDATE or DELETE without any condition, and ``allow_all`` not given."""


class InvalidCursorError(QueryError, ValueError):
    """A keyset cursor that was tampered with or belongs to another query."""


class InvalidValueError(QueryError, ValueError):
    """The database refused a bound value: wrong type, too long, out of range, NUL byte.

    The message names the SQLSTATE / error number, never the value.
    """


class NotFoundError(DatabaseError, LookupError):
    """No row matched where one was required."""


class MultipleResultsError(DatabaseError):
    """More than one row matched where exactly one was required."""


class IntegrityViolationError(DatabaseError):
    """A constraint refused the write; ``constraint`` names it when the driver tells."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class DuplicateKeyError(IntegrityViolationError):
    """A unique or primary-key constraint was violated."""


class StaleDataError(DatabaseError):
    """The row changed (or vanished) since it was read: optimistic-lock conflict."""


class PoolTimeoutError(DatabaseError, TimeoutError):
    """No pooled connection became free within ``pool_timeout``."""


class TransientDatabaseError(DatabaseError):
    """A failure that a retry of the whole transaction may cure."""


class ConnectionLostError(TransientDatabaseError, ConnectionError):
    """The connection broke (server restart, killed backend, network)."""


class ConcurrencyConflictError(TransientDatabaseError):
    """Deadlock or serialization failure; retry the transaction."""


_UNIQUE_SQLSTATE = "23505"
_TRANSIENT_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock
_MYSQL_DUPLICATE = 1062
_MYSQL_TRANSIENT = {1213, 1205}  # deadlock, lock wait timeout
_INVALID_VALUE_SQLSTATES = {"42804", "42883"}  # datatype mismatch, no operator for the types
_MYSQL_INVALID_VALUE = {1264, 1265, 1292, 1366, 1406}  # out of range, truncated, bad value, too long
_MYSQL_GONE = {2006, 2013, 2055, 1927, 1053}  # server gone / lost / killed / shutdown
_CONSTRAINT_PATTERNS = (
    re.compile(r'constraint "([^"]+)"'),  # PostgreSQL
    re.compile(r"for key '(?:[^'.]+\.)?([^']+)'"),  # MySQL / MariaDB
    re.compile(r"UNIQUE constraint failed: ([\w., ]+)"),  # SQLite (columns)
    re.compile(r"\(([\w.]+)\) violated"),  # Oracle
)


def _orig_code(orig: BaseException | None) -> tuple[str | None, int | None]:
    """Return (sqlstate, mysql errno) of a driver exception, where it has them."""
    if orig is None:
        return None, None
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    errno: int | None = None
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        errno = args[0]
    return (str(sqlstate) if sqlstate else None), errno


def _constraint_name(orig: BaseException | None) -> str | None:
    name = getattr(orig, "constraint_name", None)  # asyncpg
    if name:
        return str(name)
    text = str(orig) if orig is not None else ""
    for pattern in _CONSTRAINT_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def _is_unique_violation(orig: BaseException | None, sqlstate: str | None, errno: int | None) -> bool:
    text = str(orig) if orig is not None else ""
    return (
        sqlstate == _UNIQUE_SQLSTATE
        or errno == _MYSQL_DUPLICATE
        or "UNIQUE constraint failed" in text
        or "ORA-00001" in text
    )


def _translate_dbapi(exc: sa_exc.DBAPIError) -> DatabaseError | None:
    orig = exc.orig
    sqlstate, errno = _orig_code(orig)
    if isinstance(exc, sa_exc.IntegrityError):
        constraint = _constraint_name(orig)
        cls = DuplicateKeyError if _is_unique_violation(orig, sqlstate, errno) else None
        what = "duplicate key" if cls else "integrity constraint violated"
        where = f" (constraint {constraint})" if constraint else ""
        return (cls or IntegrityViolationError)(f"{what}{where}", constraint=constraint)
    if _is_invalid_value(exc, sqlstate, errno):
        code = f"SQLSTATE {sqlstate}" if sqlstate else f"error {errno}"
        kind = _DATA_KINDS.get(sqlstate or "", "bad value")
        return InvalidValueError(f"the database refused a value ({code}: {kind})")
    if sqlstate in _TRANSIENT_SQLSTATES or errno in _MYSQL_TRANSIENT:
        return ConcurrencyConflictError(f"transaction conflict: {type(orig).__name__}")
    if exc.connection_invalidated or errno in _MYSQL_GONE or _looks_disconnected(orig):
        return ConnectionLostError(f"database connection lost: {type(orig).__name__}")
    return None


_DATA_KINDS = {
    "22001": "string too long",
    "22003": "number out of range",
    "22021": "invalid character, e.g. a NUL byte",
    "22P02": "invalid text representation",
    "42804": "wrong type",
    "42883": "wrong type for the operator",
}


def _is_invalid_value(exc: sa_exc.DBAPIError, sqlstate: str | None, errno: int | None) -> bool:
    return (
        isinstance(exc, sa_exc.DataError)
        or (sqlstate is not None and (sqlstate.startswith("22") or sqlstate in _INVALID_VALUE_SQLSTATES))
        or errno in _MYSQL_INVALID_VALUE
    )


def _looks_disconnected(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    name = type(orig).__name__
    return name in {"ConnectionDoesNotExistError", "InterfaceError", "AdminShutdownError"} or (
        isinstance(orig, ConnectionError | OSError)
    )


def translate_error(exc: BaseException) -> BaseException:
    """Map a SQLAlchemy/driver exception to the kit's typed error; others pass through.

    The caller raises the result ``from exc`` so the original stays as ``__cause__``.
    """
    if isinstance(exc, DatabaseError):
        return exc
    if isinstance(exc, orm_exc.StaleDataError):
        return StaleDataError(str(exc))
    if isinstance(exc, sa_exc.TimeoutError):
        return PoolTimeoutError(str(exc))
    if isinstance(exc, sa_exc.NoResultFound):
        return NotFoundError(str(exc))
    if isinstance(exc, sa_exc.MultipleResultsFound):
        return MultipleResultsError(str(exc))
    if isinstance(exc, sa_exc.DBAPIError):
        return _translate_dbapi(exc) or exc
    if isinstance(exc, ConnectionError):  # e.g. asyncpg's refused connect, raised unwrapped
        return ConnectionLostError(f"cannot reach the database: {type(exc).__name__}")
    return exc
