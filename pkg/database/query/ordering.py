"""Sort specs (``"-created_at"``, ``"id"``) and the keyset predicate built from them.

The keyset predicate is an OR-expansion that works on every dialect, with mixed
directions: ``a > x OR (a = x AND b < y) OR (a = x AND b = y AND id > z)``.
Keyset sort columns must be NOT NULL (NULL order differs between dialects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, inspect, literal, or_

from pkg.database.errors import QueryError, UnknownFieldError
from pkg.database.query.lookups import column_names, model_columns, resolve_column, table_columns

__all__ = [
    "KeysetSpec",
    "SortKey",
    "keyset_predicate",
    "keyset_spec",
    "parse_sort",
    "sort_value_type",
    "with_pk_tiebreaker",
]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort column: attribute name and direction."""

    name: str
    desc: bool = False

    def __str__(self) -> str:
        return f"-{self.name}" if self.desc else self.name


def parse_sort(model: type[Any], fields: Sequence[str]) -> tuple[SortKey, ...]:
    """``("-created_at", "id")`` -> sort keys; anything else raises ``UnknownFieldError``.

    A spec is a column attribute name with at most one leading ``-`` (descending) or
    ``+``: ``--name``, ``+-name``, ``-`` and ``""`` are refused, not guessed at.
    """
    keys = []
    for field in fields:
        name = field[1:] if isinstance(field, str) and field[:1] in ("-", "+") else field
        if not isinstance(name, str) or name not in model_columns(model):
            shown = name if isinstance(name, str) and name else str(field)
            raise UnknownFieldError(shown, column_names(model), kind="order_by field")
        keys.append(SortKey(name, field.startswith("-")))
    return tuple(keys)


def with_pk_tiebreaker(model: type[Any], keys: Sequence[SortKey]) -> tuple[SortKey, ...]:
    """``keys`` plus each primary-key column not already in them (ascending)."""
    present = {k.name for k in keys}
    mapper = inspect(model)
    pk_names = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    return tuple(keys) + tuple(SortKey(n) for n in pk_names if n not in present)


def order_clauses(model: type[Any], keys: Sequence[SortKey]) -> list[Any]:
    """SQLAlchemy ORDER BY clauses for ``keys``."""
    columns = table_columns(model)
    return [columns[k.name].desc() if k.desc else columns[k.name] for k in keys]


def check_keyset_columns(model: type[Any], keys: Sequence[SortKey]) -> None:
    """Keyset sort columns must be NOT NULL; ``QueryError`` otherwise."""
    for key in keys:
        column = resolve_column(model, key.name).property.columns[0]
        if column.nullable:
            raise QueryError(f"keyset sort column {key.name!r} is nullable; sort by NOT NULL columns")


def keyset_predicate(
    model: type[Any], keys: Sequence[SortKey], values: Sequence[Any], *, bind: str | None = None
) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order given by ``keys``; ``bind``: name the
    parameters ``<bind>0``, ``<bind>1``... (a statement reused with other values)."""
    table = table_columns(model)
    columns = [table[k.name] for k in keys]
    bound = [
        literal(v, c.type) if bind is None else bindparam(f"{bind}{i}", v, type_=c.type)
        for i, (c, v) in enumerate(zip(columns, values, strict=True))
    ]
    branches = []
    for i, key in enumerate(keys):
        step = columns[i] < bound[i] if key.desc else columns[i] > bound[i]
        branches.append(and_(*(columns[j] == bound[j] for j in range(i)), step) if i else step)
    return or_(*branches) if len(branches) > 1 else branches[0]


def sort_value_type(model: type[Any], name: str) -> type[Any] | None:
    """The Python type of sort column ``name`` (to decode a cursor value), None if unknown."""
    column_type = inspect(model).column_attrs[name].columns[0].type
    column_type = getattr(column_type, "impl_instance", column_type)
    try:
        return column_type.python_type  # type: ignore[no-any-return]
    except NotImplementedError:
        return None


KeysetSpec = tuple[tuple[SortKey, ...], str, list[type[Any] | None]]


def keyset_spec(model: type[Any], keys: Sequence[SortKey]) -> KeysetSpec:
    """What a keyset over ``keys`` needs, fixed per model and sort: the PK-tiebroken sort,
    its cursor spec (``table:keys``: a cursor names the query it belongs to) and the
    Python type of each sort value (to decode cursors)."""
    sort = with_pk_tiebreaker(model, keys)
    check_keyset_columns(model, sort)
    types = [sort_value_type(model, k.name) for k in sort]
    return sort, f"{inspect(model).local_table.name}:{','.join(str(k) for k in sort)}", types
