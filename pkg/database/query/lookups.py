"""Django-style lookups (``field__op=value``) turned into SQLAlchemy expressions.

Unknown fields and operators raise :class:`UnknownFieldError` listing the valid
names; values are always bound parameters, never spliced into SQL::

    build_lookups(User, {"email__icontains": "50%_off", "id__in": [1, 2]})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, inspect, literal_column, or_
from sqlalchemy.orm import InstrumentedAttribute

from pkg.database.errors import UnknownFieldError
from pkg.database.query.limits import in_list_limit

__all__ = ["OPERATORS", "build_lookups", "column_names", "model_columns", "resolve_column"]

Expr = ColumnElement[bool]


def _never() -> Expr:
    """``1 = 0``: valid in a WHERE on every dialect (bare FALSE / 0 is not, on Oracle < 23)."""
    return literal_column("1") == literal_column("0")


def _always() -> Expr:
    return literal_column("1") == literal_column("1")


_IN_CHUNK = in_list_limit("oracle")  # split long IN lists so they run everywhere


def _values(value: Any, op: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"lookup {op!r} expects a collection of values, got {type(value).__name__}")
    return list(value)


def _in(col: Any, value: Any) -> Expr:
    items = _values(value, "in")
    if not items:
        return _never()
    parts = [col.in_(items[i : i + _IN_CHUNK]) for i in range(0, len(items), _IN_CHUNK)]
    return parts[0] if len(parts) == 1 else or_(*parts)


def _not_in(col: Any, value: Any) -> Expr:
    items = _values(value, "not_in")
    if not items:
        return _always()
    parts = [col.not_in(items[i : i + _IN_CHUNK]) for i in range(0, len(items), _IN_CHUNK)]
    return and_(*parts)


def _between(col: Any, value: Any) -> Expr:
    low, high = _values(value, "between")
    return col.between(low, high)  # type: ignore[no-any-return]


def _exact(col: Any, value: Any) -> Expr:
    return col.is_(None) if value is None else col == value  # type: ignore[no-any-return]


def _ne(col: Any, value: Any) -> Expr:
    return col.is_not(None) if value is None else col != value  # type: ignore[no-any-return]


def _isnull(col: Any, value: Any) -> Expr:
    return col.is_(None) if value else col.is_not(None)  # type: ignore[no-any-return]


OPERATORS: dict[str, Callable[[Any, Any], Expr]] = {
    "exact": _exact,
    "ne": _ne,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "in": _in,
    "not_in": _not_in,
    "between": _between,
    "isnull": _isnull,
    "like": lambda c, v: c.like(v),
    "ilike": lambda c, v: c.ilike(v),
    "contains": lambda c, v: c.contains(v, autoescape=True),
    "icontains": lambda c, v: c.icontains(v, autoescape=True),
    "startswith": lambda c, v: c.startswith(v, autoescape=True),
    "endswith": lambda c, v: c.endswith(v, autoescape=True),
}


_COLUMNS: dict[type[Any], dict[str, InstrumentedAttribute[Any]]] = {}


def model_columns(model: type[Any]) -> Mapping[str, InstrumentedAttribute[Any]]:
    """``{attribute name: column attribute}`` of a mapped class (cached: mappings are fixed)."""
    found = _COLUMNS.get(model)
    if found is None:
        found = {a.key: getattr(model, a.key) for a in inspect(model).column_attrs}
        _COLUMNS[model] = found
    return found


def column_names(model: type[Any]) -> list[str]:
    """The mapped column attribute names of ``model``, sorted."""
    return sorted(model_columns(model))


def resolve_column(model: type[Any], name: str) -> InstrumentedAttribute[Any]:
    """The column attribute ``model.<name>``; ``UnknownFieldError`` if there is none."""
    column = model_columns(model).get(name)
    if column is None:
        raise UnknownFieldError(name, column_names(model), kind="field")
    return column


def _split(model: type[Any], key: str) -> tuple[str, str]:
    if key in model_columns(model):
        return key, "exact"
    field, sep, op = key.rpartition("__")
    if not sep:
        return key, "exact"
    return field, op


def build_lookups(model: type[Any], lookups: Mapping[str, Any]) -> list[Expr]:
    """One expression per ``field__op=value`` item, in order."""
    exprs: list[Expr] = []
    for key, value in lookups.items():
        field, op = _split(model, key)
        column = resolve_column(model, field)
        operator = OPERATORS.get(op)
        if operator is None:
            raise UnknownFieldError(op, sorted(OPERATORS), kind="lookup operator")
        exprs.append(operator(column, value))
    return exprs
