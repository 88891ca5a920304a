"""What a driver error *means*, read from its SQLSTATE / server error number.

``classify(orig, invalidated)`` names what happened (:class:`Kind`); ``errors.py`` maps the
kind to the kit's error class. Codes win; a message is read only where the driver gives
nothing else (SQLite's generic ``SQLITE_ERROR``, asyncpg's client-side ``InterfaceError``,
Oracle, which has no server in the test matrix).

Bad client value vs failed computation (SQLSTATE class 22): a code in
``BAD_VALUE_SQLSTATES`` says the value that was sent cannot be stored or parsed (too long,
not a number, NUL byte, bad date, out of the column's range); every other class-22 code says
the server could not compute the statement (division by zero, logarithm of zero, negative
substring length, array subscript). PostgreSQL reports an overflow of a column and of an
arithmetic expression with the same 22003, so 22003 counts as a bad value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["DriverCodes", "Kind", "classify", "codes_of", "describe"]


class Kind(enum.Enum):
    """What a driver error says happened."""

    DUPLICATE = "duplicate key"
    INTEGRITY = "integrity constraint violated"
    BAD_VALUE = "bad value"
    COMPUTATION = "computation failed"
    CONFLICT = "transaction conflict"
    LOCK_TIMEOUT = "lock wait timeout"
    LOST = "connection lost"
    CONCURRENT_USE = "connection used by two operations at once"
    READ_ONLY = "write refused by a read-only server or transaction"


@dataclass(frozen=True, slots=True)
class DriverCodes:
    """The codes a driver exception carries: SQLSTATE, MySQL errno, SQLite extended code."""

    sqlstate: str | None = None
    mysql: int | None = None
    sqlite: int | None = None

    def describe(self) -> str:
        """``SQLSTATE 22012`` / ``MySQL error 1365`` / ``SQLite code 2067``, or ''."""
        if self.sqlstate:
            return f"SQLSTATE {self.sqlstate}"
        if self.mysql is not None:
            return f"MySQL error {self.mysql}"
        return f"SQLite code {self.sqlite}" if self.sqlite is not None else ""


# -- SQLSTATE (PostgreSQL; MySQL/MariaDB send one too) -----------------------------
UNIQUE_SQLSTATE = "23505"
CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
LOCK_TIMEOUT_SQLSTATES = frozenset({"55P03"})  # lock_not_available: lock_timeout, NOWAIT
LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})  # admin / crash shutdown, cannot connect now
LOST_SQLSTATE_CLASS = "08"  # connection exception
READ_ONLY_SQLSTATES = frozenset({"25006"})  # read_only_sql_transaction (a hot standby, READ ONLY)
BAD_VALUE_SQLSTATES: dict[str, str] = {
    "22000": "bad value",
    "22001": "string too long",
    "22003": "number out of range",
    "22004": "null value not allowed",
    "22007": "invalid date/time format",
    "22008": "date/time out of range",
    "22009": "invalid time zone",
    "22018": "invalid character value for cast",
    "22019": "invalid escape character",
    "22021": "invalid character, e.g. a NUL byte",
    "22025": "invalid escape sequence",
    "22026": "string length mismatch",
    "2201B": "invalid regular expression",
    "22030": "duplicate JSON key",
    "22032": "invalid JSON text",
    "22P02": "invalid text representation",
    "22P03": "invalid binary representation",
    "22P05": "untranslatable character",
    "42804": "wrong type",
    "42883": "wrong type for the operator",
}
COMPUTATION_SQLSTATE_CLASS = "22"  # data exception not in BAD_VALUE_SQLSTATES
COMPUTATION_KINDS: dict[str, str] = {
    "22012": "division by zero",
    "2201E": "invalid argument for logarithm",
    "2201F": "invalid argument for power function",
    "22011": "substring error",
    "22015": "interval out of range",
    "2202E": "array subscript error",
}

# -- MySQL / MariaDB error numbers --------------------------------------------------
MYSQL_DUPLICATE = frozenset({1062, 1586})  # duplicate entry (for key)
MYSQL_INTEGRITY = frozenset({1048, 1451, 1452, 3819, 4025})  # NOT NULL, FK, CHECK
MYSQL_CONFLICT = frozenset({1213, 1205})  # deadlock, lock wait timeout
MYSQL_LOCK_TIMEOUT = frozenset({1205, 3572})  # lock wait timeout (row or metadata), NOWAIT
MYSQL_BAD_VALUE = frozenset({1264, 1265, 1292, 1366, 1406, 1411})  # range, truncated, bad value, too long
MYSQL_COMPUTATION = {1365: "division by zero", 1690: "value out of range in an expression"}
MYSQL_READ_ONLY = frozenset({1290, 1792})  # --read-only server, READ ONLY transaction
MYSQL_LOST = frozenset({1053, 1927, 2002, 2003, 2006, 2013, 2055})  # shutdown, killed, gone, lost

# -- SQLite result codes (primary code = extended & 0xFF) ---------------------------
SQLITE_CONSTRAINT = 19
SQLITE_UNIQUE = frozenset({1555, 2067})  # SQLITE_CONSTRAINT_PRIMARYKEY, _UNIQUE
SQLITE_CONFLICT = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
SQLITE_BAD_VALUE = frozenset({18, 20})  # SQLITE_TOOBIG, SQLITE_MISMATCH
SQLITE_ERROR = 1  # generic: only the message says more

# -- messages, only where the driver gives no code ----------------------------------
_CONCURRENT_USE_TEXT = "another operation is in progress"  # asyncpg InterfaceError, no SQLSTATE
_SQLITE_COMPUTATION_TEXT = ("integer overflow",)  # SQLITE_ERROR
_ORACLE_UNIQUE_TEXT = "ORA-00001"


def codes_of(orig: BaseException | None) -> DriverCodes:
    """The SQLSTATE, MySQL errno and SQLite code of a driver exception, where it has them."""
    if orig is None:
        return DriverCodes()
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    args = getattr(orig, "args", ())
    mysql = args[0] if args and isinstance(args[0], int) and not isinstance(args[0], bool) else None
    sqlite = getattr(orig, "sqlite_errorcode", None)
    return DriverCodes(
        str(sqlstate) if sqlstate else None, mysql, sqlite if isinstance(sqlite, int) else None
    )


def _constraint_kind(codes: DriverCodes, text: str) -> Kind | None:
    state = codes.sqlstate or ""
    if state == UNIQUE_SQLSTATE or codes.mysql in MYSQL_DUPLICATE or codes.sqlite in SQLITE_UNIQUE:
        return Kind.DUPLICATE
    if _ORACLE_UNIQUE_TEXT in text:
        return Kind.DUPLICATE
    sqlite_constraint = codes.sqlite is not None and codes.sqlite & 0xFF == SQLITE_CONSTRAINT
    if state.startswith("23") or codes.mysql in MYSQL_INTEGRITY or sqlite_constraint:
        return Kind.INTEGRITY
    return None


def _data_kind(codes: DriverCodes, text: str) -> Kind | None:
    state = codes.sqlstate or ""
    if codes.mysql in MYSQL_COMPUTATION:  # checked before the SQLSTATE: 1690 sends 22003
        return Kind.COMPUTATION
    if state in BAD_VALUE_SQLSTATES or codes.mysql in MYSQL_BAD_VALUE or codes.sqlite in SQLITE_BAD_VALUE:
        return Kind.BAD_VALUE
    if state.startswith(COMPUTATION_SQLSTATE_CLASS):
        return Kind.COMPUTATION
    if codes.sqlite == SQLITE_ERROR and any(t in text for t in _SQLITE_COMPUTATION_TEXT):
        return Kind.COMPUTATION
    return None


def _session_kind(codes: DriverCodes, text: str) -> Kind | None:
    state = codes.sqlstate or ""
    if state in LOCK_TIMEOUT_SQLSTATES or codes.mysql in MYSQL_LOCK_TIMEOUT:
        return Kind.LOCK_TIMEOUT
    if state in CONFLICT_SQLSTATES or codes.mysql in MYSQL_CONFLICT:
        return Kind.CONFLICT
    if codes.sqlite is not None and codes.sqlite & 0xFF in SQLITE_CONFLICT:
        return Kind.CONFLICT
    if state.startswith(LOST_SQLSTATE_CLASS) or state in LOST_SQLSTATES or codes.mysql in MYSQL_LOST:
        return Kind.LOST
    if state in READ_ONLY_SQLSTATES or codes.mysql in MYSQL_READ_ONLY:
        return Kind.READ_ONLY
    if not state and _CONCURRENT_USE_TEXT in text:
        return Kind.CONCURRENT_USE
    return None


def classify(orig: BaseException | None, *, invalidated: bool) -> tuple[Kind | None, DriverCodes]:
    """What ``orig`` says happened, and its codes.

    ``invalidated``: SQLAlchemy found the connection closed (the dialect's ``is_disconnect``
    asks the connection itself), the surest sign of a lost connection.
    """
    codes = codes_of(orig)
    if invalidated:
        return Kind.LOST, codes
    text = str(orig) if orig is not None else ""
    kind = _constraint_kind(codes, text) or _data_kind(codes, text) or _session_kind(codes, text)
    if kind is None and isinstance(orig, ConnectionError | OSError):  # socket-level: what happened
        kind = Kind.LOST
    return kind, codes


def describe(codes: DriverCodes) -> str:
    """``SQLSTATE 22012: division by zero``: the code and what it means; never a value."""
    state = codes.sqlstate or ""
    detail = BAD_VALUE_SQLSTATES.get(state) or COMPUTATION_KINDS.get(state)
    if codes.mysql is not None and codes.mysql in MYSQL_COMPUTATION:
        detail = MYSQL_COMPUTATION[codes.mysql]
    where = codes.describe() or "no error code"
    return f"{where}: {detail}" if detail else where
