"""The kit's typed database errors as HTTP answers, one table, one handler.

Every error body is ``{"detail": "...", "code": "..."}``::

    install_error_handlers(app)
    # DuplicateKeyError(constraint="uq_users_email") -> 409 {"detail": "email already registered", ...}
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pkg.database.errors import (
    DatabaseError,
    DatabaseNotInitializedError,
    DuplicateKeyError,
    IntegrityViolationError,
    InvalidCursorError,
    NotFoundError,
    PoolTimeoutError,
    QueryError,
    ReadOnlySessionError,
    StaleDataError,
    TransientDatabaseError,
    UnknownFieldError,
    UnloadedRelationError,
)

__all__ = ["CONSTRAINT_MESSAGES", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)

# Known unique constraints -> a message a client can act on.
CONSTRAINT_MESSAGES = {
    "uq_users_email": "a user with this email already exists",
    "users_email_key": "a user with this email already exists",
    "users.email": "a user with this email already exists",
}

# Most specific first: (error class, status, code)
_TABLE: tuple[tuple[type[DatabaseError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (DuplicateKeyError, 409, "duplicate"),
    (IntegrityViolationError, 409, "integrity"),
    (StaleDataError, 409, "stale"),
    (UnknownFieldError, 422, "unknown_field"),
    (InvalidCursorError, 422, "invalid_cursor"),
    (ReadOnlySessionError, 500, "read_only_session"),  # a write in a read session: a bug
    (UnloadedRelationError, 500, "unloaded_relation"),  # a query without the .load() it needs: a bug
    (QueryError, 422, "invalid_query"),
    (PoolTimeoutError, 503, "pool_timeout"),
    (TransientDatabaseError, 503, "unavailable"),
    (DatabaseNotInitializedError, 503, "unavailable"),
)


def _message(exc: DatabaseError) -> str:
    if isinstance(exc, DuplicateKeyError):
        known = CONSTRAINT_MESSAGES.get(exc.constraint or "")
        return known or f"duplicate value violates {exc.constraint or 'a unique constraint'}"
    if isinstance(exc, StaleDataError):
        return "the record was changed by someone else; reload it and retry"
    if isinstance(exc, NotFoundError):
        return str(exc) or "not found"
    if isinstance(exc, QueryError | IntegrityViolationError):
        return str(exc)
    return "the database is unavailable; retry later"


def error_response(exc: DatabaseError) -> JSONResponse:
    """The HTTP answer for a kit error (500 for anything not in the table)."""
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            headers = {"Retry-After": "1"} if status == 503 else None
            return JSONResponse({"detail": _message(exc), "code": code}, status, headers=headers)
    return JSONResponse({"detail": "internal database error", "code": "database_error"}, 500)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DatabaseError)
    response = error_response(exc)
    level = logging.ERROR if response.status_code >= 500 else logging.INFO
    logger.log(
        level,
        "%s %s -> %d (%s)",
        request.method,
        request.url.path,
        response.status_code,
        type(exc).__name__,
        exc_info=response.status_code == 500,
    )
    return response


async def _handle_unreachable(request: Request, exc: Exception) -> JSONResponse:
    # a refused/reset connect is raised by the driver as a plain OSError, untranslated
    logger.error("%s %s -> 503 (%s: %s)", request.method, request.url.path, type(exc).__name__, exc)
    body = {"detail": "the database is unavailable; retry later", "code": "unavailable"}
    return JSONResponse(body, 503, headers={"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers: every :class:`DatabaseError`, and connect-time ``ConnectionError``."""
    app.add_exception_handler(DatabaseError, _handle)
    app.add_exception_handler(ConnectionError, _handle_unreachable)
