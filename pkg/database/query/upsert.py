"""The one place for dialect upserts: one atomic INSERT-or-UPDATE statement per chunk.

PostgreSQL / SQLite: ``INSERT ... ON CONFLICT (...) DO UPDATE``; MySQL / MariaDB:
``INSERT ... ON DUPLICATE KEY UPDATE`` (fires on *any* unique key of the table);
Oracle: ``MERGE INTO ... USING (SELECT ... FROM DUAL UNION ALL ...)``::

    stmt = build_upsert(dialect, users_table, rows, UpsertPlan(("email",), ("username",), {}, ()))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Dialect, Executable, Index, Table, UniqueConstraint, bindparam, text
from sqlalchemy.dialects import mysql, postgresql, sqlite

from pkg.database.errors import UnknownFieldError

__all__ = ["UpsertPlan", "build_upsert", "check_conflict_target", "fill_defaults"]


@dataclass(frozen=True, slots=True)
class UpsertPlan:
    """What the conflict branch does, by column key.

    ``copy``: columns taken from the incoming row; ``assign``: fixed values
    (e.g. ``updated_at``); ``increment``: columns set to ``column + 1`` (version).
    """

    conflict_on: tuple[str, ...]
    copy: tuple[str, ...]
    assign: Mapping[str, Any]
    increment: tuple[str, ...]


def unique_targets(table: Table) -> list[tuple[str, ...]]:
    """Column-key sets of the table's primary key, unique constraints and unique indexes."""
    targets = [tuple(c.key for c in table.primary_key.columns)]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            targets.append(tuple(c.key for c in constraint.columns))
    for index in table.indexes:
        if isinstance(index, Index) and index.unique:
            targets.append(tuple(c.key for c in index.columns if isinstance(c, Column)))
    targets += [(c.key,) for c in table.columns if c.unique]
    return targets


def check_conflict_target(table: Table, conflict_on: Sequence[str]) -> tuple[str, ...]:
    """``conflict_on`` if it is exactly a unique key of ``table``; else ``UnknownFieldError``."""
    targets = unique_targets(table)
    if set(conflict_on) not in [set(t) for t in targets]:
        valid = sorted({",".join(t) for t in targets})
        raise UnknownFieldError(",".join(conflict_on), valid, kind="conflict target")
    return tuple(conflict_on)


def fill_defaults(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every Python-side column default filled in, so all rows share their keys."""
    defaults = [c for c in table.columns if c.default is not None and not c.primary_key]
    keys = list(dict.fromkeys(k for row in rows for k in row))
    filled = []
    for row in rows:
        full = {k: row.get(k) for k in keys}
        for column in defaults:
            if column.key not in row:
                default: Any = column.default
                full[column.key] = default.arg(None) if default.is_callable else default.arg
        filled.append(full)
    return filled


def _insert_on_conflict(module: Any, table: Table, rows: list[dict[str, Any]], plan: UpsertPlan) -> Any:
    stmt = module.insert(table).values(rows)
    sets: dict[str, Any] = {k: stmt.excluded[k] for k in plan.copy}
    sets.update(plan.assign)
    sets.update({k: table.c[k] + 1 for k in plan.increment})
    if not sets:
        return stmt.on_conflict_do_nothing(index_elements=list(plan.conflict_on))
    return stmt.on_conflict_do_update(index_elements=list(plan.conflict_on), set_=sets)


def _insert_on_duplicate(table: Table, rows: list[dict[str, Any]], plan: UpsertPlan) -> Any:
    stmt = mysql.insert(table).values(rows)
    sets: dict[str, Any] = {k: stmt.inserted[k] for k in plan.copy}
    sets.update(plan.assign)
    sets.update({k: table.c[k] + 1 for k in plan.increment})
    if not sets:  # nothing to change: a no-op assignment keeps it one statement
        sets = {plan.conflict_on[0]: table.c[plan.conflict_on[0]]}
    return stmt.on_duplicate_key_update(sets)


def _merge(dialect: Dialect, table: Table, rows: list[dict[str, Any]], plan: UpsertPlan) -> Any:
    quote = dialect.identifier_preparer.quote
    keys = list(rows[0])
    binds, selects = [], []
    for i, row in enumerate(rows):
        cols = []
        for j, key in enumerate(keys):
            name = f"r{i}_{j}"
            binds.append(bindparam(name, row[key], type_=table.c[key].type))
            cols.append(f":{name} AS {quote(key)}")
        selects.append(f"SELECT {', '.join(cols)} FROM DUAL")
    sets = [f"t.{quote(k)} = s.{quote(k)}" for k in plan.copy]
    for key, value in plan.assign.items():
        binds.append(bindparam(f"a_{key}", value, type_=table.c[key].type))
        sets.append(f"t.{quote(key)} = :a_{key}")
    sets += [f"t.{quote(k)} = t.{quote(k)} + 1" for k in plan.increment]
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in plan.conflict_on)
    sql = (
        f"MERGE INTO {quote(table.name)} t USING ({' UNION ALL '.join(selects)}) s ON ({on})"
        + (f" WHEN MATCHED THEN UPDATE SET {', '.join(sets)}" if sets else "")
        + f" WHEN NOT MATCHED THEN INSERT ({', '.join(quote(k) for k in keys)})"
        + f" VALUES ({', '.join(f's.{quote(k)}' for k in keys)})"
    )
    return text(sql).bindparams(*binds)


def build_upsert(
    dialect: Dialect, table: Table, rows: Sequence[Mapping[str, Any]], plan: UpsertPlan
) -> Executable:
    """One upsert statement for ``rows`` (already filled, same keys) on ``dialect``."""
    data = [dict(r) for r in rows]
    name = dialect.name
    if name == "postgresql":
        return _insert_on_conflict(postgresql, table, data, plan)  # type: ignore[no-any-return]
    if name == "sqlite":
        return _insert_on_conflict(sqlite, table, data, plan)  # type: ignore[no-any-return]
    if name in ("mysql", "mariadb"):
        return _insert_on_duplicate(table, data, plan)  # type: ignore[no-any-return]
    if name == "oracle":
        return _merge(dialect, table, data, plan)  # type: ignore[no-any-return]
    raise NotImplementedError(f"upsert is not supported on {name}")
