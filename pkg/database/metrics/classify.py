"""Bounded labels from what a statement is and how it failed: cheap, never the SQL text.

Example::

    classify_operation("  select * from users")   # "SELECT"
    classify_operation("WITH t AS (...) SELECT")  # "OTHER": only the first keyword is read
    error_class(asyncpg_unique_violation)          # "DuplicateKeyError"
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from pkg.database.errors import DatabaseError, PoolTimeoutError, translate_error
from pkg.database.metrics.events import Operation, Outcome

__all__ = ["OTHER_ERROR", "POOL_TIMEOUT_ERROR", "classify_operation", "error_class", "outcome_of"]

_OPERATIONS: dict[str, Operation] = {
    "SELECT": "SELECT",
    "INSERT": "INSERT",
    "UPDATE": "UPDATE",
    "DELETE": "DELETE",
}
_LEADING = " \t\r\n("
OTHER_ERROR = "OtherError"  # an exception that is not a driver error (bounded, never its text)
POOL_TIMEOUT_ERROR = PoolTimeoutError.__name__


def classify_operation(statement: str) -> Operation:
    """SELECT / INSERT / UPDATE / DELETE from the statement's first keyword, else OTHER.

    Reads at most the first 32 characters (leading blanks and parentheses skipped): a CTE
    (``WITH ...``), a comment first, ``BEGIN`` or ``SET`` are OTHER.
    """
    head = statement[:32].lstrip(_LEADING)[:7].upper()
    word = head[:6]
    if len(head) == 7 and head[6].isalnum():
        return "OTHER"
    return _OPERATIONS.get(word, "OTHER")


def error_class(
    exc: BaseException, driver_error: type[BaseException] | None = None, *, disconnect: bool = False
) -> str:
    """The kit's error class for an exception raised during a statement.

    ``driver_error`` is the driver's PEP 249 ``Error`` class (``dialect.loaded_dbapi.Error``):
    such an exception is translated as the kit translates it everywhere (SQLSTATE / error
    number, never the driver's class name alone): ``DuplicateKeyError``,
    ``ConnectionLostError``, ``DriverError`` ...; ``OtherError`` for anything that is not a
    database error. ``disconnect``: the dialect found the connection gone (asyncpg's "connection
    is closed" has no SQLSTATE), as SQLAlchemy's ``connection_invalidated`` tells the kit.
    """
    if driver_error is not None and isinstance(exc, driver_error):
        exc = sa_exc.DBAPIError(None, None, exc, connection_invalidated=disconnect)  # as SQLAlchemy does
    typed = translate_error(exc)
    return type(typed).__name__ if isinstance(typed, DatabaseError) else OTHER_ERROR


def outcome_of(exc: BaseException | None) -> Outcome:
    """``ok``, ``error``, or ``cancelled`` (the task was cancelled mid-statement: not an error)."""
    if exc is None:
        return "ok"
    return "error" if isinstance(exc, Exception) else "cancelled"
