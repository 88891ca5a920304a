"""Running behind PgBouncer in transaction pooling mode: ``pgbouncer="transaction"``.

In transaction mode PgBouncer lends a server connection to a client for one transaction
only; the next transaction (and, outside a transaction, the next protocol *sync*) may
run on another client's server connection. What the kit does about it, and why:

* **Unnamed statements, both statement caches off.** asyncpg prepares every statement
  (Parse, then Bind/Execute) and caches it under a name on the server connection it
  happened to use. Through the pooler that name is missing on the next server connection
  (``prepared statement "__asyncpg_stmt_N__" does not exist``), and unique names leak one
  statement per transaction on the server. The unnamed statement is replaced by the next
  Parse, so nothing accumulates: asyncpg ``statement_cache_size=0``, SQLAlchemy
  ``prepared_statement_cache_size=0``, ``prepared_statement_name_func`` returning "".
* **Every statement inside a transaction.** Parse and Bind/Execute go out in two syncs; only
  inside a transaction does PgBouncer keep them on one server connection. So the DAO's
  own-session reads do not use AUTOCOMMIT here, and AUTOCOMMIT is refused
  (:class:`~pkg.database.errors.SessionFeatureError`). SQLAlchemy's pre-ping already runs
  its ``SELECT`` inside a transaction when none is open.
* **Forced shutdown closes sockets, never ``pg_terminate_backend``.** The pid a client sees
  behind PgBouncer is a random cancel key, and the server connection belongs to whichever
  client runs a transaction on it next: killing it would hit someone else. Closing the
  client socket makes PgBouncer drop the server connection that was mid-transaction.
* **Startup settings PgBouncer refuses fail at engine creation.** PgBouncer forwards only
  the parameters it tracks per client (``application_name``, ``client_encoding``,
  ``DateStyle``, ``TimeZone``, ``standard_conforming_strings``); any other
  ``server_settings`` option is refused at login unless listed in PgBouncer's
  ``ignore_startup_parameters``, and then silently not applied.
* **Session-only features are refused per statement**: session advisory locks, ``SET`` /
  ``RESET`` without ``LOCAL``, ``LISTEN``, ``PREPARE``, cursors ``WITH HOLD`` raise
  :class:`~pkg.database.errors.SessionFeatureError` instead of leaking state into another
  client's transaction. Use ``pg_advisory_xact_lock`` and ``SET LOCAL``.

Migrations and admin work (DDL with session settings, ``CREATE DATABASE``) should bypass the
pooler: give them the server's own URL (``DB_DIRECT_URL`` in the example app).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from pkg.database.errors import ConfigurationError, SessionFeatureError
from pkg.database.utils import POOLER_OPTION

__all__ = [
    "PGBOUNCER_MODES",
    "POOLER_OPTION",
    "check_mode",
    "guard_session_features",
    "pooler_connect_args",
    "session_feature",
]

PGBOUNCER_MODES = frozenset({"transaction"})
# Startup parameters PgBouncer tracks per client (the rest are refused at login).
_TRACKED_STARTUP = frozenset(
    {"application_name", "client_encoding", "datestyle", "timezone", "standard_conforming_strings"}
)
_CACHE_ARGS = {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
# Statements that leave state on the server session, which the pooler hands to others.
_SESSION_FEATURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "a session advisory lock (use pg_advisory_xact_lock)",
        re.compile(r"\bpg_(try_)?advisory_(un)?lock", re.I),
    ),
    (
        "SET without LOCAL (use SET LOCAL)",
        re.compile(r"^\s*(SET(?!\s+(LOCAL|TRANSACTION|CONSTRAINTS)\b)|RESET)\b", re.I),
    ),
    (
        "set_config(..., false) (pass is_local true)",
        re.compile(r"\bset_config\s*\([^;]*,\s*false\s*\)", re.I),
    ),
    ("LISTEN / UNLISTEN", re.compile(r"^\s*(UN)?LISTEN\b", re.I)),
    ("PREPARE / DEALLOCATE", re.compile(r"^\s*(PREPARE|DEALLOCATE)\b", re.I)),
    ("a cursor WITH HOLD", re.compile(r"^\s*DECLARE\b.*\bWITH\s+HOLD\b", re.I | re.S)),
)


def _unnamed_statement() -> str:
    """asyncpg statement name: "" is the unnamed statement (replaced by the next Parse)."""
    return ""


def check_mode(url: URL, mode: str | None) -> str | None:
    """Validate ``pgbouncer=``: None, or a supported mode on a PostgreSQL asyncpg URL."""
    if mode is None:
        return None
    if mode not in PGBOUNCER_MODES:
        valid = ", ".join(sorted(PGBOUNCER_MODES))
        raise ConfigurationError(
            f"pgbouncer must be one of {valid} or None, got {mode!r}", key="DB_PGBOUNCER"
        )
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "asyncpg":
        raise ConfigurationError(
            f"pgbouncer={mode!r} needs postgresql+asyncpg, got {url.drivername!r}", key="DB_PGBOUNCER"
        )
    return mode


def pooler_connect_args(args: dict[str, Any]) -> dict[str, Any]:
    """``connect_args`` made safe for transaction pooling (see the module docstring)."""
    refused = sorted(k for k in (args.get("server_settings") or {}) if k.lower() not in _TRACKED_STARTUP)
    if refused:
        raise ConfigurationError(
            f"server_settings {', '.join(refused)} cannot be sent through PgBouncer: it refuses "
            "startup parameters it does not track (unless listed in its ignore_startup_parameters, "
            "and then they are silently dropped); set them per role or database "
            "(ALTER ROLE ... SET) or per transaction (SET LOCAL)",
            key="DB_PGBOUNCER",
        )
    for name, safe in _CACHE_ARGS.items():
        if args.get(name, safe) != safe:
            raise ConfigurationError(
                f"{name}={args[name]!r} breaks PgBouncer transaction mode", key="DB_PGBOUNCER"
            )
    return {**args, **_CACHE_ARGS, "prepared_statement_name_func": _unnamed_statement}


@lru_cache(maxsize=512)
def session_feature(statement: str) -> str | None:
    """What in ``statement`` needs a server session of its own, or None (memoised)."""
    for what, pattern in _SESSION_FEATURES:
        if pattern.search(statement):
            return what
    return None


def _refuse_session_features(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        raise SessionFeatureError(
            "AUTOCOMMIT behind PgBouncer: Parse and Execute may reach different server "
            "connections; run the statement inside a transaction"
        )
    what = session_feature(statement)
    if what is not None:
        raise SessionFeatureError(
            f"{what} needs a server session of its own; behind PgBouncer's transaction pooling "
            "the next transaction may run on another client's server connection"
        )


def guard_session_features(engine: Engine) -> None:
    """Refuse AUTOCOMMIT and session-only statements on ``engine`` (idempotent)."""
    if not event.contains(engine, "before_cursor_execute", _refuse_session_features):
        event.listen(engine, "before_cursor_execute", _refuse_session_features)
