"""The one table of per-dialect statement limits (and read mode) used by the DAO.

``rows_per_statement(dialect, columns)`` keeps a multi-row statement under the
driver's bind-parameter limit; ``in_list_limit`` caps one IN list (Oracle: 1000);
``long_in_form`` says how a list longer than ``INLINE_IN_ITEMS`` is sent:

* ``"array"``: one array parameter, ``col = ANY(:arr)`` (PostgreSQL: asyncpg allows
  32,767 parameters per statement, an array is one);
* ``"json"``: one JSON text parameter, ``col IN (SELECT value FROM json_each(:doc))``
  (SQLite: 32,766 parameters in a standard build);
* ``"chunks"``: OR-ed ``IN`` lists of ``in_list_limit`` items (MySQL/MariaDB, whose
  drivers interpolate on the client, and Oracle, whose IN lists hold 1000 items).
"""

from __future__ import annotations

import operator
import sqlite3
from typing import Any, Literal, NamedTuple

from pkg.database.errors import QueryError

__all__ = [
    "INLINE_IN_ITEMS",
    "MAX_ROWS_ARG",
    "autocommit_reads",
    "autocommit_writes",
    "in_list_limit",
    "long_in_form",
    "max_bind_params",
    "row_count",
    "rows_per_statement",
]

LongInForm = Literal["array", "json", "chunks"]


class _Limits(NamedTuple):
    params: int  # bind parameters per statement
    in_items: int  # items in one IN list
    long_in: LongInForm  # how an IN list longer than INLINE_IN_ITEMS is sent


_SQLITE_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_LIMITS: dict[str, _Limits] = {
    "postgresql": _Limits(32767, 10000, "array"),
    "mysql": _Limits(65535, 10000, "chunks"),
    "mariadb": _Limits(65535, 10000, "chunks"),
    "sqlite": _Limits(_SQLITE_PARAMS, min(_SQLITE_PARAMS, 10000), "json"),
    "oracle": _Limits(65535, 1000, "chunks"),
}
_DEFAULT = _Limits(999, 999, "chunks")
# IN lists up to this length are a plain ``IN (...)`` on every dialect (Oracle's cap).
INLINE_IN_ITEMS = 1000
# Dialects whose driver runs a statement outside a transaction for free (asyncpg: no
# BEGIN / ROLLBACK round trips). Elsewhere switching to autocommit costs round trips.
_AUTOCOMMIT_READS = frozenset({"postgresql"})
# Dialects where one write statement of an own session runs in AUTOCOMMIT: the statement
# is atomic on its own, and BEGIN / COMMIT would be two more round trips (asyncpg).
_AUTOCOMMIT_WRITES = frozenset({"postgresql"})
_MAX_ROWS = 5000  # beyond this, bigger statements stop paying off


def max_bind_params(dialect: str) -> int:
    """Bind parameters one statement may carry on ``dialect``."""
    return _LIMITS.get(dialect, _DEFAULT).params


def in_list_limit(dialect: str) -> int:
    """Items one IN list may hold on ``dialect`` (Oracle: 1000)."""
    return _LIMITS.get(dialect, _DEFAULT).in_items


def long_in_form(dialect: str) -> LongInForm:
    """How ``dialect`` receives an IN list longer than ``INLINE_IN_ITEMS`` (see above)."""
    return _LIMITS.get(dialect, _DEFAULT).long_in


def rows_per_statement(dialect: str, columns: int) -> int:
    """Rows of ``columns`` values that fit one statement, with some headroom."""
    fit = (max_bind_params(dialect) - 10) // max(columns, 1)
    return max(1, min(fit, _MAX_ROWS))


def autocommit_reads(dialect: str) -> bool:
    """Whether a DAO's own read-only session should run in AUTOCOMMIT on ``dialect``."""
    return dialect in _AUTOCOMMIT_READS


def autocommit_writes(dialect: str) -> bool:
    """Whether an own session sending exactly one write statement runs it in AUTOCOMMIT."""
    return dialect in _AUTOCOMMIT_WRITES


_DBAPI_AUTOCOMMIT = frozenset({"asyncpg"})


def dbapi_autocommit(driver: str) -> bool:
    """Whether ``driver``'s DBAPI connection switches to autocommit with no I/O (its
    ``autocommit`` attribute; asyncpg then starts no transaction): cheaper for one checkout
    than SQLAlchemy's ``isolation_level`` option, which is set and reset around it."""
    return driver in _DBAPI_AUTOCOMMIT


MAX_ROWS_ARG = 2**31 - 1  # the largest limit / offset / page size: a signed 32-bit int on every dialect


def row_count(name: str, value: Any, low: int, high: int = MAX_ROWS_ARG) -> int:
    """``value`` as a whole number in ``[low, high]``, checked before any SQL; ``QueryError`` if not.

    Refuses bool, float, str and out-of-range values (MariaDB would answer ``LIMIT -1``
    with a raw syntax error, others differ); accepts any integer type (``__index__``).
    """
    try:
        number = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        number = None
    if number is None:
        raise QueryError(f"{name} must be a whole number, not {type(value).__name__}")
    if not low <= number <= high:
        raise QueryError(f"{name} must be between {low} and {high}")
    return number
