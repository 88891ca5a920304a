"""Lookups as named bind parameters, so one statement serves every call of the same shape.

``users.query().filter(is_active=True, id__gt=5)`` builds a new statement per call, and
SQLAlchemy then walks it to find its compiled form (the cache key) and maps the values
onto that: about a third of the client CPU of a short query. :func:`bound_lookups` builds
the same expressions with named bind parameters (values attached) and a *shape* (fields,
operators, and the None / True / False values, which stay in the SQL as before); the
builder keys a per-DAO :class:`StatementCache` by shape, and a later call of the same
shape runs the cached statement with its own values::

    found = bound_lookups(User, {"id__gt": 5}, start=0)
    exprs, params, shape = found         # [users.id > :q0], {"q0": 5}, (("id__gt",),)

Only plain comparisons are bound: one value (or two, ``between``), ``isnull``, short
``in`` / ``not_in`` lists (one expanding parameter); text matching, long IN lists and
relation lookups return None and the builder builds them as :func:`build_lookups` does.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

from sqlalchemy import ClauseElement, Executable, bindparam

from pkg.database.query.limits import INLINE_IN_ITEMS
from pkg.database.query.lookups import OPERATORS, check_no_nul, model_columns, split_lookup, table_columns

__all__ = ["StatementCache", "bound_lookups"]

_ONE_VALUE = frozenset({"exact", "ne", "gt", "gte", "lt", "lte"})
_LISTS = frozenset({"in", "not_in"})

Bound = tuple[list[Any], dict[str, Any], tuple[Any, ...]]


def bound_lookups(model: type[Any], lookups: Mapping[str, Any], *, start: int) -> Bound | None:
    """``(expressions, parameters, shape)`` for ``lookups``, parameters named from ``start``;
    None when one of them is not a plain comparison (or is invalid: the caller's
    :func:`build_lookups` then raises the error)."""
    exprs: list[Any] = []
    params: dict[str, Any] = {}
    shape: list[Any] = []
    columns = table_columns(model)
    for i, (key, value) in enumerate(lookups.items(), start):
        field, op = split_lookup(model, key)
        if field not in model_columns(model) or op not in OPERATORS:
            return None
        part = _bind(columns[field], key, op, value, f"q{i}", params)
        if part is None:
            return None
        exprs.append(part[0])
        shape.append((key, *part[1]))
    return exprs, params, tuple(shape)


def _bind(column: Any, key: str, op: str, value: Any, name: str, params: dict[str, Any]) -> Any:
    """``(expression, shape part)`` of one lookup, its values added to ``params``."""
    if isinstance(value, ClauseElement) or hasattr(value, "__clause_element__"):
        return None  # a column or expression, not a value: part of the SQL
    if op == "isnull":
        return OPERATORS[op](column, value), (bool(value),)
    if op in ("exact", "ne") and (value is None or isinstance(value, bool)):  # SQL as written before
        return OPERATORS[op](column, value), (value,)
    if op in _ONE_VALUE:
        check_no_nul(key, (value,))
        params[name] = value
        return OPERATORS[op](column, bindparam(name, value, type_=column.type)), ()
    if op == "between" and isinstance(value, list | tuple) and len(value) == 2:
        check_no_nul(key, value)
        low, high = (bindparam(f"{name}_{j}", v, type_=column.type) for j, v in enumerate(value))
        params[low.key], params[high.key] = value
        return column.between(low, high), ()
    if (
        op in _LISTS
        and isinstance(value, list | tuple | set | frozenset)
        and 0 < len(value) <= INLINE_IN_ITEMS
    ):
        items = list(value)
        check_no_nul(key, items)
        params[name] = items
        values = bindparam(name, items, type_=column.type, expanding=True)
        return (column.in_(values) if op == "in" else column.not_in(values)), ()
    return None


class StatementCache:
    """Statements by shape, for one DAO (bounded: an odd shape never grows it for good)."""

    def __init__(self, limit: int = 128) -> None:
        self.limit = limit
        self._statements: dict[Hashable, Executable] = {}

    def get(self, key: Hashable, build: Callable[[], Executable]) -> Executable:
        """The statement cached for ``key``, else ``build()`` cached under it."""
        found = self._statements.get(key)
        if found is None:
            if len(self._statements) >= self.limit:
                self._statements.clear()
            found = self._statements[key] = build()
        return found

    def clear(self) -> None:
        self._statements.clear()
