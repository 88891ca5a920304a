"""Lookups as named bind parameters, so one statement serves every call of the same shape.

``users.query().filter(is_active=True, id__gt=5)`` builds a new statement per call, and
SQLAlchemy then walks it to find its compiled form (the cache key) and maps the values
onto that: about a third of the client CPU of a short query. :func:`bound_lookups` builds
the same expressions with named bind parameters (values attached) and a *shape* (fields,
operators, and the None / True / False values, which stay in the SQL as before); the
builder keys a per-DAO :class:`StatementCache` by shape, and a later call of the same
shape runs the cached statement with its own values::

    conditions, params, shape = bound_lookups(User, {"id__gt": 5}, start=0)
    conditions()                         # [users.id > :q0]; params {"q0": 5}; shape (("id__gt",),)

Only plain comparisons are bound: one value (or two, ``between``), ``isnull``, short
``in`` / ``not_in`` lists (one expanding parameter); text matching, long IN lists and
relation lookups return None and the builder builds them as :func:`build_lookups` does.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from sqlalchemy import ClauseElement, bindparam

from pkg.database.query.limits import INLINE_IN_ITEMS
from pkg.database.query.lookups import OPERATORS, check_no_nul, model_columns, split_lookup, table_columns

__all__ = ["Conditions", "StatementCache", "bound_lookups"]

T = TypeVar("T")

_ONE_VALUE = frozenset({"exact", "ne", "gt", "gte", "lt", "lte"})
_LISTS = frozenset({"in", "not_in"})

Conditions = Callable[[], list[Any]]  # builds the expressions, only when a statement is built
Bound = tuple[Conditions, dict[str, Any], tuple[Any, ...]]


def bound_lookups(model: type[Any], lookups: Mapping[str, Any], *, start: int) -> Bound | None:
    """``(conditions, parameters, shape)`` for ``lookups``, parameters named from ``start``;
    ``conditions()`` builds the expressions (a cached statement of the shape needs none).
    None when one of them is not a plain comparison (or is invalid: the caller's
    :func:`build_lookups` then raises the error)."""
    makers: list[Callable[[], Any]] = []
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
        makers.append(part[0])
        shape.append((key, *part[1]))
    return (lambda: [make() for make in makers]), params, tuple(shape)


def _bind(column: Any, key: str, op: str, value: Any, name: str, params: dict[str, Any]) -> Any:
    """``(expression maker, shape part)`` of one lookup, its values added to ``params``."""
    if isinstance(value, ClauseElement) or hasattr(value, "__clause_element__"):
        return None  # a column or expression, not a value: part of the SQL
    operator = OPERATORS[op]
    if op == "isnull":
        return (lambda: operator(column, value)), (bool(value),)
    if op in ("exact", "ne") and (value is None or isinstance(value, bool)):  # SQL as written before
        return (lambda: operator(column, value)), (value,)
    if op in _ONE_VALUE:
        check_no_nul(key, (value,))
        params[name] = value
        return (lambda: operator(column, bindparam(name, value, type_=column.type))), ()
    if op == "between" and isinstance(value, list | tuple) and len(value) == 2:
        check_no_nul(key, value)
        params[f"{name}_0"], params[f"{name}_1"] = value
        bounds = [(f"{name}_{j}", v) for j, v in enumerate(value)]
        return (lambda: column.between(*(bindparam(n, v, type_=column.type) for n, v in bounds))), ()
    collection = isinstance(value, list | tuple | set | frozenset)
    if op in _LISTS and collection and 0 < len(value) <= INLINE_IN_ITEMS:
        items = list(value)
        check_no_nul(key, items)
        params[name] = items

        def listed() -> Any:
            values = bindparam(name, items, type_=column.type, expanding=True)
            return column.in_(values) if op == "in" else column.not_in(values)

        return listed, ()
    return None


class StatementCache:
    """Statements (and what else is fixed per shape, e.g. a keyset spec) by shape, for one
    DAO (bounded: an odd shape never grows it for good)."""

    def __init__(self, limit: int = 128) -> None:
        self.limit = limit
        self._statements: dict[Hashable, Any] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value cached for ``key``, else ``build()`` cached under it."""
        found = self._statements.get(key)
        if found is None:
            if len(self._statements) >= self.limit:
                self._statements.clear()
            found = self._statements[key] = build()
        return found

    def clear(self) -> None:
        self._statements.clear()
