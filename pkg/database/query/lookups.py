"""Django-style lookups (``field__op=value``) turned into SQLAlchemy expressions.

Unknown fields and operators raise :class:`UnknownFieldError` listing the valid
names; values are always bound parameters, never spliced into SQL::

    build_lookups(User, {"email__icontains": "50%_off", "id__in": [1, 2]})
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    Dialect,
    Select,
    Text,
    all_,
    and_,
    any_,
    bindparam,
    func,
    inspect,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from pkg.database.errors import InvalidValueError, UnknownFieldError
from pkg.database.query.limits import INLINE_IN_ITEMS, in_list_limit, long_in_form
from pkg.database.utils import json_dumps

__all__ = [
    "OPERATORS",
    "LongIn",
    "build_lookups",
    "check_no_nul",
    "column_names",
    "model_columns",
    "own_table",
    "reset_column_caches",
    "resolve_column",
    "split_lookup",
    "table_columns",
]

Expr = ColumnElement[bool]


def _never() -> Expr:
    """``1 = 0``: valid in a WHERE on every dialect (bare FALSE / 0 is not, on Oracle < 23)."""
    return literal_column("1") == literal_column("0")


def _always() -> Expr:
    return literal_column("1") == literal_column("1")


def _values(value: Any, op: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"lookup {op!r} expects a collection of values, got {type(value).__name__}")
    return list(value)


class LongIn(ColumnElement[bool]):
    """``column [NOT] IN (values)`` for more than ``INLINE_IN_ITEMS`` values, any number.

    Compiled per dialect in the form ``limits.long_in_form`` names: one array parameter
    (PostgreSQL), one JSON parameter read by ``json_each`` (SQLite) or OR-ed IN lists of
    ``in_list_limit`` items (MySQL/MariaDB, Oracle). Never cached: the values are part
    of the statement, so it is compiled on each call (lists this long are rare).
    """

    __visit_name__ = "kit_long_in"
    inherit_cache = False
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_plain_obj),
        ("negate", InternalTraversal.dp_boolean),
    ]

    def __init__(self, column: Any, values: Sequence[Any], *, negate: bool = False) -> None:
        self.column: ColumnElement[Any] = column.expression if hasattr(column, "expression") else column
        self.values = tuple(values)
        self.negate = negate
        self.type = Boolean()

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        """A predicate as it is (compiled in parentheses), never ``(...) = 1`` like a column."""
        return self


def _as_chunks(element: LongIn, dialect: Dialect) -> Expr:
    col, step, values = element.column, in_list_limit(dialect.name), element.values
    if element.negate:
        return and_(*(col.not_in(values[i : i + step]) for i in range(0, len(values), step)))
    return or_(*(col.in_(values[i : i + step]) for i in range(0, len(values), step)))


def _as_array(element: LongIn, dialect: Dialect) -> Expr:
    array = bindparam(None, list(element.values), type_=ARRAY(element.column.type))
    return element.column != all_(array) if element.negate else element.column == any_(array)


def _json_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str) or (isinstance(value, int) and -(2**63) <= value < 2**63)


def _as_json(element: LongIn, dialect: Dialect) -> Expr:
    """``col IN (SELECT value FROM json_each(:doc))``, values bound as the column binds them."""
    process = element.column.type.dialect_impl(dialect).bind_processor(dialect)
    items = [process(v) for v in element.values] if process else list(element.values)
    if not all(_json_scalar(v) for v in items):  # e.g. bytes: no JSON form, send chunks
        return _as_chunks(element, dialect)
    doc = bindparam(None, json_dumps(items), type_=Text())
    rows: Select[Any] = select(literal_column("value")).select_from(func.json_each(doc))
    return element.column.not_in(rows) if element.negate else element.column.in_(rows)


_LONG_IN_FORMS: dict[str, Callable[[LongIn, Dialect], Expr]] = {
    "array": _as_array,
    "json": _as_json,
    "chunks": _as_chunks,
}


@compiles(LongIn)
def _compile_long_in(element: LongIn, compiler: SQLCompiler, **kw: Any) -> str:
    expression = _LONG_IN_FORMS[long_in_form(compiler.dialect.name)](element, compiler.dialect)
    return compiler.process(expression.self_group(), **kw)


def _in(col: Any, value: Any) -> Expr:
    items = _values(value, "in")
    if not items:
        return _never()
    return LongIn(col, items) if len(items) > INLINE_IN_ITEMS else col.in_(items)


def _not_in(col: Any, value: Any) -> Expr:
    items = _values(value, "not_in")
    if not items:
        return _always()
    return LongIn(col, items, negate=True) if len(items) > INLINE_IN_ITEMS else col.not_in(items)


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


_TABLE_COLUMNS: dict[type[Any], dict[str, Any]] = {}


def table_columns(model: type[Any]) -> Mapping[str, Any]:
    """``{attribute name: Table column}`` where the attribute is exactly one column of the
    mapper's own table, else its ORM attribute (inheritance, SQL expressions). The same SQL
    as the ORM attributes, but the statement stays plain Core: SQLAlchemy builds and
    cache-keys it in about half the time (cached like :func:`model_columns`)."""
    found = _TABLE_COLUMNS.get(model)
    if found is None:
        mapper = inspect(model)
        found = {}
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            own = len(prop.columns) == 1 and getattr(column, "table", None) is mapper.local_table
            found[prop.key] = column if own and mapper.inherits is None else getattr(model, prop.key)
        _TABLE_COLUMNS[model] = found
    return found


def reset_column_caches() -> None:
    """Forget the cached column maps (:func:`model_columns`, :func:`table_columns`): for
    tests that map and unmap classes; a live mapping never changes."""
    _COLUMNS.clear()
    _TABLE_COLUMNS.clear()


def own_table(model: type[Any]) -> Any:
    """What the model's own statements select from: its table, or the model itself where the
    ORM adds criteria (inheritance)."""
    mapper = inspect(model)
    return mapper.local_table if mapper.inherits is None else model


def column_names(model: type[Any]) -> list[str]:
    """The mapped column attribute names of ``model``, sorted."""
    return sorted(model_columns(model))


def resolve_column(model: type[Any], name: str) -> InstrumentedAttribute[Any]:
    """The column attribute ``model.<name>``; ``UnknownFieldError`` if there is none."""
    column = model_columns(model).get(name)
    if column is None:
        raise UnknownFieldError(name, column_names(model), kind="field")
    return column


def split_lookup(model: type[Any], key: str) -> tuple[str, str]:
    """``(field, operator)`` of a lookup key: ``"id__gt"`` -> ``("id", "gt")``."""
    if key in model_columns(model):
        return key, "exact"
    field, sep, op = key.rpartition("__")
    if not sep:
        return key, "exact"
    return field, op


_COLLECTION_OPERATORS = frozenset({"in", "not_in", "between"})


def check_no_nul(key: str, values: Iterable[Any]) -> None:
    """``InvalidValueError`` for text holding a NUL byte (the value itself is never echoed).

    Checked here, for every dialect alike: PostgreSQL refuses NUL in text, while SQLite
    and MySQL would compare it in their own ways.
    """
    if any(isinstance(v, str) and "\x00" in v for v in values):
        raise InvalidValueError(f"lookup {key!r}: a text value holds a NUL byte, which no column can match")


def _relation_lookup(model: type[Any], key: str, value: Any) -> Expr | None:
    """``orders__total__gt=100`` -> ``EXISTS`` over the relation ``orders`` (``any()`` for a
    collection, ``has()`` for a reference), any depth; ``orders__isnull=True``: none exists.
    None when ``key`` does not start with a relation name."""
    name, sep, rest = key.partition("__")
    relation = inspect(model).relationships.get(name) if sep and key not in model_columns(model) else None
    if relation is None:
        return None
    attribute = getattr(model, name)
    match = attribute.any if relation.uselist else attribute.has
    related_model = relation.mapper.class_
    deleted_at = model_columns(related_model).get("deleted_at")  # soft-deleted rows never match
    live = [deleted_at.is_(None)] if deleted_at is not None else []
    if rest == "isnull":
        return ~match(*live) if value else match(*live)  # type: ignore[no-any-return]
    return match(*build_lookups(related_model, {rest: value}, own=False), *live)  # type: ignore[no-any-return]


def _unknown_field(model: type[Any], field: str) -> UnknownFieldError:
    relations = [f"{r}__<field>" for r in sorted(inspect(model).relationships.keys())]
    return UnknownFieldError(field, [*column_names(model), *relations], kind="field")


def build_lookups(model: type[Any], lookups: Mapping[str, Any], *, own: bool = True) -> list[Expr]:
    """One expression per ``field__op=value`` item, in order (``relation__field__op``: EXISTS).

    ``own``: for a statement over ``model``'s own table (:func:`table_columns`); False inside
    a relation's EXISTS, which the ORM may alias.
    """
    exprs: list[Expr] = []
    columns = table_columns(model) if own else model_columns(model)
    for key, value in lookups.items():
        related = _relation_lookup(model, key, value)
        if related is not None:
            exprs.append(related)
            continue
        field, op = split_lookup(model, key)
        if field not in model_columns(model):
            raise _unknown_field(model, field)
        column = columns[field]
        operator = OPERATORS.get(op)
        if operator is None:
            raise UnknownFieldError(op, sorted(OPERATORS), kind="lookup operator")
        if op in _COLLECTION_OPERATORS:
            value = _values(value, op)  # once: a generator is read a single time
            check_no_nul(key, value)
        else:
            check_no_nul(key, (value,))
        exprs.append(operator(column, value))
    return exprs
