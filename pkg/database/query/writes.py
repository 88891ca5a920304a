"""Value maps for builder and bulk writes: field checks and the bookkeeping columns.

Every UPDATE the kit emits (builder ``update``, ``soft_delete``, upsert conflict
branch) gets ``updated_at = now``, ``updater_id = current actor`` and
``version = version + 1`` when the model has those mixins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import JSON, Dialect, PickleType, Update, bindparam, inspect, or_
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from pkg.database.actor import current_actor
from pkg.database.errors import QueryError, UnknownFieldError, UnsafeQueryError
from pkg.database.query.lookups import column_names, model_columns
from pkg.database.types import utcnow

__all__ = [
    "STAMPS",
    "bookkeeping_values",
    "bound_update",
    "bound_update_values",
    "check_fields",
    "check_write",
    "guarded_update",
    "one_statement_flush",
    "returning_update",
    "update_guard",
    "update_values",
]


def check_fields(model: type[Any], names: Iterable[str]) -> None:
    """``UnknownFieldError`` for the first name that is not a mapped column."""
    attrs = model_columns(model)
    for name in names:
        if name not in attrs:
            raise UnknownFieldError(name, column_names(model), kind="field")


def check_write(model: type[Any], allow_all: bool, conditioned: bool, window: tuple[Any, Any]) -> None:
    """A builder UPDATE/DELETE takes no limit/offset ``window`` (``QueryError``) and, unless
    ``allow_all``, not every row (``UnsafeQueryError``)."""
    if window != (None, None):
        raise QueryError("update/delete do not take limit/offset")
    if not (conditioned or allow_all):
        raise UnsafeQueryError(f"{model.__name__}: update/delete without a condition; pass allow_all=True")


STAMPS = {"updated_at": utcnow, "updater_id": current_actor}  # field -> its value at each UPDATE


def bookkeeping_values(model: type[Any]) -> dict[str, Any]:
    """The columns every UPDATE of ``model`` maintains, keyed by attribute name."""
    mapper = inspect(model)
    attrs = mapper.column_attrs
    values: dict[str, Any] = {key: make() for key, make in STAMPS.items() if key in attrs}
    if mapper.version_id_col is not None:
        column = mapper.version_id_col
        values[mapper.get_property_by_column(column).key] = column + 1
    return values


def update_values(model: type[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` checked against the model, plus the bookkeeping columns (caller's win)."""
    check_fields(model, values)
    return {**bookkeeping_values(model), **values}


BoundUpdate = tuple[tuple[tuple[str, bool], ...], dict[str, Any]]


def bound_update_values(
    model: type[Any], values: Mapping[str, Any], lookups: Iterable[str] = ()
) -> BoundUpdate | None:
    """``update_values`` as bound parameters ``u_<field>`` for a statement cached per shape:
    ``(shape, parameters)``, the shape a ``(field, bound)`` pair per value (the bookkeeping
    ``version + 1`` stays SQL). None (built fresh then) when a caller's value is SQL, or when a
    column is named like one of these or the ``lookups`` parameters: executed with them,
    SQLAlchemy would take that parameter as a value to SET."""
    merged, params, shape = update_values(model, values), {}, []
    for key, value in merged.items():
        sql = isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")
        if sql and key in values:
            return None
        if not sql:
            params[f"u_{key}"] = value
        shape.append((key, not sql))
    columns = inspect(model).local_table.c
    if any(name in columns for name in (*params, *lookups)):
        return None
    return tuple(shape), params


def bound_update(
    model: type[Any], shape: Iterable[tuple[str, bool]], criteria: Callable[[], Iterable[Any]]
) -> Update:
    """The UPDATE of :func:`bound_update_values`' ``shape`` under ``criteria()``."""
    attrs, stamps = inspect(model).column_attrs, bookkeeping_values(model)
    values = {
        key: bindparam(f"u_{key}", type_=attrs[key].columns[0].type) if bound else stamps[key]
        for key, bound in shape
    }
    return sa_update(model).where(*criteria()).values(values)


_FLUSH_EVENTS = ("before_insert", "after_insert", "before_update", "after_update")


def one_statement_flush(model: type[Any]) -> bool:
    """Whether flushing one new or changed ``model`` row is exactly one statement.

    Not so for a mapper spanning several tables (joined inheritance) or with mapper
    insert/update listeners (which may run statements of their own).
    """
    mapper: Mapper[Any] = inspect(model)
    if len(mapper.tables) != 1:
        return False
    return not any(getattr(mapper.dispatch, name) for name in _FLUSH_EVENTS)


def _comparable(column_type: TypeEngine[Any], dialect: Dialect) -> bool:
    """Whether the database compares values of this type as Python compares them."""
    if isinstance(column_type, PickleType):
        return False
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.load_dialect_impl(dialect)
    if isinstance(column_type, JSON):  # only JSONB compares documents, not their text
        return isinstance(column_type, JSONB)
    return True


def update_guard(model: type[Any], keys: Iterable[str], dialect: Dialect) -> bool:
    """Whether one guarded UPDATE of the fields ``keys`` can stand for the ORM's flush: some
    fields, no validators or flush listeners, one table, types compared as Python does."""
    mapper: Mapper[Any] = inspect(model)
    keys = list(keys)
    if not keys or mapper.validators or not one_statement_flush(model):
        return False
    attrs = model_columns(model)
    return all(_comparable(attrs[k].type, dialect) for k in keys)


def guarded_update(
    model: type[Any], keys: Mapping[str, Any], values: Mapping[str, Any], dialect: Dialect, *, live: bool
) -> Update | None:
    """One ``UPDATE`` doing what the ORM's load-change-flush of one row does (no RETURNING).

    ``keys``: primary key and, for a version check, the expected version; ``live``: skip
    soft-deleted rows. It changes the row only when a value differs (``IS DISTINCT FROM``):
    the ORM writes nothing, bumps no version and stamps no ``updated_at`` for an unchanged
    row. No row matched means absent, stale or unchanged: the caller then reads the row.
    None when one statement cannot stand for the flush (validators or flush listeners,
    several tables, a type the database compares differently).
    """
    if not update_guard(model, values, dialect):
        return None
    attrs = model_columns(model)
    criteria = [attrs[k] == v for k, v in keys.items()]
    if live and "deleted_at" in attrs:
        criteria.append(attrs["deleted_at"].is_(None))
    criteria.append(or_(*(attrs[k].is_distinct_from(v) for k, v in values.items())))
    return sa_update(model).where(*criteria).values(update_values(model, values))


def returning_update(
    model: type[Any], keys: Mapping[str, Any], values: Mapping[str, Any], dialect: Dialect, *, live: bool
) -> Update | None:
    """:func:`guarded_update` ``RETURNING`` the ORM entity (for a session), None also where
    the database has no UPDATE RETURNING."""
    stmt = guarded_update(model, keys, values, dialect, live=live) if dialect.update_returning else None
    if stmt is None:
        return None
    return stmt.returning(model).execution_options(synchronize_session=False, populate_existing=True)
