"""The one table of per-dialect statement limits (and read mode) used by the DAO.

``rows_per_statement(dialect, columns)`` keeps a multi-row statement under the
driver's bind-parameter limit; ``in_list_limit`` caps an IN list (Oracle: 1000).
"""

from __future__ import annotations

import sqlite3

__all__ = ["autocommit_reads", "in_list_limit", "max_bind_params", "rows_per_statement"]

_SQLITE_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
# name: (max bind parameters per statement, max items in one IN list)
_LIMITS: dict[str, tuple[int, int]] = {
    "postgresql": (32767, 10000),
    "mysql": (65535, 10000),
    "mariadb": (65535, 10000),
    "sqlite": (_SQLITE_PARAMS, min(_SQLITE_PARAMS, 10000)),
    "oracle": (65535, 1000),
}
_DEFAULT = (999, 999)
# Dialects whose driver runs a statement outside a transaction for free (asyncpg: no
# BEGIN / ROLLBACK round trips). Elsewhere switching to autocommit costs round trips.
_AUTOCOMMIT_READS = frozenset({"postgresql"})
_MAX_ROWS = 5000  # beyond this, bigger statements stop paying off


def max_bind_params(dialect: str) -> int:
    """Bind parameters one statement may carry on ``dialect``."""
    return _LIMITS.get(dialect, _DEFAULT)[0]


def in_list_limit(dialect: str) -> int:
    """Items one IN list may hold on ``dialect`` (Oracle: 1000)."""
    return _LIMITS.get(dialect, _DEFAULT)[1]


def rows_per_statement(dialect: str, columns: int) -> int:
    """Rows of ``columns`` values that fit one statement, with some headroom."""
    fit = (max_bind_params(dialect) - 10) // max(columns, 1)
    return max(1, min(fit, _MAX_ROWS))


def autocommit_reads(dialect: str) -> bool:
    """Whether a DAO's own read-only session should run in AUTOCOMMIT on ``dialect``."""
    return dialect in _AUTOCOMMIT_READS
