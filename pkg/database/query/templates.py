"""Prebuilt ``count`` / ``exists`` statements of a DAO, one per shape of simple lookups.

``dao.count(is_active=True, id__between=(a, b))`` builds a new statement on every call,
and SQLAlchemy then walks it to find its compiled form (its cache key) and maps the new
values onto it: about half the client CPU of a count. :class:`LookupTemplates` builds the
statement once per *shape* (lookup keys, operators, which values are None) with bind
parameters in place of the values, through the builder itself (the same SQL), so a call
only binds values::

    templates = LookupTemplates(lambda: dao.query())
    found = templates.statement("count", {"is_active": True, "id__gt": 5})
    if found is not None:
        stmt, params = found      # conn.execute(stmt, params)

Only comparisons with one value (or two, for ``between``) are templated; ``in`` lists,
text matching, relation lookups and anything else return None (the caller builds the
statement as usual). Values are checked as the lookup would check them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Select, bindparam

from pkg.database.query.lookups import check_no_nul, model_columns, split_lookup

__all__ = ["LookupTemplates"]

_ONE_VALUE = frozenset({"exact", "ne", "gt", "gte", "lt", "lte"})
_LIMIT = 64  # shapes kept per DAO


class LookupTemplates:
    """COUNT / EXISTS statements per lookup shape, built with ``make_query()`` (a builder)."""

    def __init__(self, make_query: Callable[[], Any]) -> None:
        self._make_query = make_query
        self._model = make_query().model
        self._cache: dict[tuple[Any, ...], Select[Any]] = {}

    def statement(self, kind: str, lookups: Mapping[str, Any]) -> tuple[Select[Any], dict[str, Any]] | None:
        """``(statement, parameters)`` for ``kind`` (``"count"`` / ``"exists"``), or None."""
        shape: list[Any] = [kind]
        params: dict[str, Any] = {}
        for i, (key, value) in enumerate(lookups.items()):
            part = self._shape(i, key, value, params)
            if part is None:
                return None
            shape.append(part)
        stmt = self._cache.get(tuple(shape))
        if stmt is None:
            stmt = self._build(kind, lookups, params)
            if len(self._cache) >= _LIMIT:
                self._cache.clear()
            self._cache[tuple(shape)] = stmt
        return stmt, params

    def _shape(self, i: int, key: str, value: Any, params: dict[str, Any]) -> tuple[Any, ...] | None:
        field, op = split_lookup(self._model, key)
        if field not in model_columns(self._model):
            return None  # a relation lookup or an unknown field: the builder says which
        if op == "isnull":
            return (key, bool(value))
        if op in _ONE_VALUE:
            if value is None:
                return (key, None)
            check_no_nul(key, (value,))
            params[f"p{i}"] = value
            return (key,)
        if op == "between" and isinstance(value, list | tuple) and len(value) == 2:
            check_no_nul(key, value)
            params[f"p{i}_0"], params[f"p{i}_1"] = value
            return (key, 2)
        return None

    def _build(self, kind: str, lookups: Mapping[str, Any], params: Mapping[str, Any]) -> Select[Any]:
        """The builder's own statement, each value replaced by its bind parameter."""
        placeholders: dict[str, Any] = {}
        for i, (key, value) in enumerate(lookups.items()):
            if f"p{i}" in params:
                placeholders[key] = bindparam(f"p{i}")
            elif f"p{i}_0" in params:
                placeholders[key] = (bindparam(f"p{i}_0"), bindparam(f"p{i}_1"))
            else:
                placeholders[key] = value  # None or an isnull flag: part of the shape
        query = self._make_query().filter(**placeholders)
        return query.count_statement() if kind == "count" else query.exists_statement()  # type: ignore[no-any-return]
