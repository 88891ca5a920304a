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
    │   └── ReplicaUnavailableError   a replica down at start with DB_READ_REQUIRED=true
    ├── DatabaseNotInitializedError   get_session() before init_async_db()
    ├── QueryError                    the query itself is wrong
    │   ├── UnknownFieldError         unknown field / operator / sort name
    │   ├── UnsafeQueryError          UPDATE/DELETE without WHERE
    │   ├── InvalidCursorError        tampered or foreign keyset cursor
    │   ├── SessionFeatureError       needs a server session of its own (behind PgBouncer)
    │   ├── ReadOnlySessionError      a write in a read session (or SQLSTATE 25006 on a replica)
    │   ├── InvalidConsistencyTokenError  a read_after() token that is not one
    │   ├── UnloadedRelationError     a relation of a DAO result that the query did not .load()
    │   └── InvalidValueError         the database refused a value sent (type, length, NUL byte)
    ├── NotFoundError                 no row where one was required
    ├── MultipleResultsError          more than one row where one was required
    ├── IntegrityViolationError       a constraint refused the write
    │   └── DuplicateKeyError         unique / primary key violation
    ├── StaleDataError                optimistic-lock (version) conflict
    ├── CommitOutcomeUnknownError     the connection broke while COMMIT was in flight (never retried)
    ├── ComputationError              the server could not compute it (division by zero ...)
    ├── ConcurrentSessionUseError     one AsyncSession used by two tasks at once (a bug)
    ├── DriverError                   any other driver error (syntax, missing table, permission)
    ├── PoolTimeoutError              no connection free within pool_timeout (retry later)
    └── TransientDatabaseError        safe to retry the whole transaction
        ├── ConnectionLostError       server went away / backend killed
        └── ConcurrencyConflictError  deadlock or serialization failure
            └── LockTimeoutError      waited longer than the lock timeout for a table/row lock
    MigrationError                    (a DatabaseError) schema migrations
    ├── MigrationLockTimeoutError     another process held the migration lock too long
    └── SchemaOutOfDateError          the database is behind the code: run `make migrate`

Driver errors are classified by what happened, read from the SQLSTATE / MySQL error
number / SQLite result code (``pkg/database/error_codes.py``), never by the driver's class
name. Every translated error carries ``sqlstate`` and ``errno`` (MySQL errno or SQLite
code) when the driver gave them. ``InvalidValueError`` means the value *sent* was bad (a
client may fix it); ``ComputationError`` means the statement failed on data it computed
(``1/0``, ``ln(0)``): a bug in the query or the stored data, not in the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import exc as orm_exc

from pkg.database.error_codes import DriverCodes, Kind, classify, describe

__all__ = [
    "CommitOutcomeUnknownError",
    "ComputationError",
    "ConcurrencyConflictError",
    "ConcurrentSessionUseError",
    "ConfigurationError",
    "ConnectionLostError",
    "DatabaseError",
    "DatabaseNotInitializedError",
    "DriverError",
    "DuplicateKeyError",
    "IntegrityViolationError",
    "InvalidConsistencyTokenError",
    "InvalidCursorError",
    "InvalidValueError",
    "LockTimeoutError",
    "MigrationError",
    "MigrationLockTimeoutError",
    "MultipleResultsError",
    "NotFoundError",
    "PoolTimeoutError",
    "QueryError",
    "ReadOnlySessionError",
    "ReplicaUnavailableError",
    "SchemaOutOfDateError",
    "SessionFeatureError",
    "StaleDataError",
    "TransientDatabaseError",
    "UnknownFieldError",
    "UnloadedRelationError",
    "UnsafeQueryError",
    "translate_error",
]


class DatabaseError(Exception):
    """Base class of every error raised by the kit.

    ``sqlstate`` / ``errno`` (MySQL error number or SQLite result code) are set on errors
    translated from a driver error that carried them, else None.
    """

    sqlstate: str | None = None
    errno: int | None = None


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


class SessionFeatureError(QueryError):
    """A statement that needs a server session of its own (session advisory lock, ``SET``
    without ``LOCAL``, ``LISTEN`` ...), refused on an engine behind a transaction pooler,
    where each transaction may run on another client's server connection."""


class ReadOnlySessionError(QueryError):
    """A write in a read session: an ORM write refused before any SQL, or a statement a
    read-only server refused (SQLSTATE 25006; MySQL 1290 ``--read-only``, 1792)."""


class InvalidConsistencyTokenError(QueryError, ValueError):
    """A ``read_after()`` token that no ``consistency_token()`` made."""


class UnloadedRelationError(QueryError):
    """A relation of a DAO result that its query did not load: touching it would need SQL
    (``MissingGreenlet`` / ``DetachedInstanceError`` in async code), so it raises this instead.
    ``model`` and ``attribute`` name it; the message says which ``.load(...)`` to add."""

    def __init__(self, model: str, attribute: str) -> None:
        self.model = model
        self.attribute = attribute
        super().__init__(
            f"{model}.{attribute} was not loaded: add .load({attribute!r}) to the query (from a parent: "
            f'.load("<relation>.{attribute}")) or list it in the DAO\'s default_loads'
        )


class ReplicaUnavailableError(ConfigurationError):
    """A configured read replica does not answer at start and ``DB_READ_REQUIRED`` is on."""

    def __init__(self, message: str) -> None:
        super().__init__(message, key="DB_READ_URLS")


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


class CommitOutcomeUnknownError(DatabaseError):
    """The connection was lost while COMMIT was in flight: the transaction may or may not have
    committed. Never retried automatically; check the data (or make the work idempotent)."""


class PoolTimeoutError(DatabaseError, TimeoutError):
    """No pooled connection became free within ``pool_timeout``: retry later (web: 503)."""


class ComputationError(DatabaseError):
    """The server could not compute the statement: division by zero, a function argument
    outside its domain, an overflow in an expression. Not a bad client value, not transient."""


class ConcurrentSessionUseError(DatabaseError, RuntimeError):
    """One ``AsyncSession`` (one connection) used by two tasks at the same time.

    A programming error: never retried. Give each task its own session, or await the calls
    in turn (``asyncio.gather`` of DAO calls inside one ``transaction()`` is this error).
    """


class DriverError(DatabaseError):
    """A driver or server error the kit has no finer class for (syntax error, missing
    table, permission denied); ``sqlstate`` / ``errno`` say which, the original is ``__cause__``."""


class TransientDatabaseError(DatabaseError):
    """A failure that a retry of the whole transaction may cure."""


class ConnectionLostError(TransientDatabaseError, ConnectionError):
    """The connection broke (server restart, killed backend, network)."""


class ConcurrencyConflictError(TransientDatabaseError):
    """Deadlock or serialization failure; retry the transaction."""


class LockTimeoutError(ConcurrencyConflictError, TimeoutError):
    """A statement waited longer than its lock timeout for a table or row lock (PostgreSQL
    ``lock_timeout``, MariaDB ``lock_wait_timeout`` / ``innodb_lock_wait_timeout``)."""


class MigrationError(DatabaseError):
    """Schema migrations could not run, or the schema is not the one the code expects."""


class MigrationLockTimeoutError(MigrationError, TimeoutError):
    """Another process held the migration lock longer than we were willing to wait."""


class SchemaOutOfDateError(MigrationError):
    """The database schema is behind the code's migrations; the message says what to run."""


_CONSTRAINT_PATTERNS = (
    re.compile(r'constraint "([^"]+)"'),  # PostgreSQL
    re.compile(r"for key '(?:[^'.]+\.)?([^']+)'"),  # MySQL / MariaDB
    re.compile(r"UNIQUE constraint failed: ([\w., ]+)"),  # SQLite (columns)
    re.compile(r"\(([\w.]+)\) violated"),  # Oracle
)
_SA_CONCURRENT_USE_CODE = "isce"  # SQLAlchemy: "concurrent operations are not permitted"
_CONCURRENT_USE_MESSAGE = (
    "one AsyncSession (or connection) used by two tasks at once; "
    "give each task its own session or await the calls in turn"
)


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


def _from_kind(kind: Kind | None, exc: sa_exc.DBAPIError, codes: DriverCodes) -> DatabaseError:
    orig_name = type(exc.orig).__name__
    if kind in (Kind.DUPLICATE, Kind.INTEGRITY):
        constraint = _constraint_name(exc.orig)
        where = f" (constraint {constraint})" if constraint else ""
        cls = DuplicateKeyError if kind is Kind.DUPLICATE else IntegrityViolationError
        return cls(f"{kind.value}{where}", constraint=constraint)
    if kind is Kind.BAD_VALUE:
        return InvalidValueError(f"the database refused a value ({describe(codes)})")
    if kind is Kind.COMPUTATION:
        return ComputationError(f"the database could not compute the statement ({describe(codes)})")
    if kind is Kind.LOCK_TIMEOUT:
        return LockTimeoutError(f"lock wait timeout ({describe(codes)}): {orig_name}")
    if kind is Kind.CONFLICT:
        return ConcurrencyConflictError(f"transaction conflict ({describe(codes)}): {orig_name}")
    if kind is Kind.LOST:
        return ConnectionLostError(f"database connection lost: {orig_name}")
    if kind is Kind.CONCURRENT_USE:
        return ConcurrentSessionUseError(_CONCURRENT_USE_MESSAGE)
    if kind is Kind.READ_ONLY:
        return ReadOnlySessionError(
            f"the server is read-only here ({describe(codes)}): a write in a read session"
        )
    if isinstance(exc, sa_exc.IntegrityError):  # no code at all (e.g. a driver without one)
        return IntegrityViolationError("integrity constraint violated", constraint=_constraint_name(exc.orig))
    if isinstance(exc, sa_exc.DataError) and codes == DriverCodes():
        return InvalidValueError("the database refused a value")
    return DriverError(f"database error ({describe(codes)}): {orig_name}")


def _translate_dbapi(exc: sa_exc.DBAPIError) -> DatabaseError:
    kind, codes = classify(exc.orig, invalidated=bool(exc.connection_invalidated))
    error = _from_kind(kind, exc, codes)
    error.sqlstate, error.errno = codes.sqlstate, codes.mysql if codes.mysql is not None else codes.sqlite
    return error


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
        return _translate_dbapi(exc)
    if isinstance(exc, sa_exc.SQLAlchemyError) and exc.code == _SA_CONCURRENT_USE_CODE:
        return ConcurrentSessionUseError(_CONCURRENT_USE_MESSAGE)
    if isinstance(exc, ConnectionError):  # e.g. asyncpg's refused connect, raised unwrapped
        return ConnectionLostError(f"cannot reach the database: {type(exc).__name__}")
    return exc
