"""Value maps for builder and bulk writes: field checks and the bookkeeping columns.

Every UPDATE the kit emits (builder ``update``, ``soft_delete``, upsert conflict
branch) gets ``updated_at = now``, ``updater_id = current actor`` and
``version = version + 1`` when the model has those mixins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import inspect

from pkg.database.actor import current_actor
from pkg.database.errors import UnknownFieldError
from pkg.database.query.lookups import column_names, model_columns
from pkg.database.types import utcnow

__all__ = ["bookkeeping_values", "check_fields", "update_values"]


def check_fields(model: type[Any], names: Iterable[str]) -> None:
    """``UnknownFieldError`` for the first name that is not a mapped column."""
    attrs = model_columns(model)
    for name in names:
        if name not in attrs:
            raise UnknownFieldError(name, column_names(model), kind="field")


def bookkeeping_values(model: type[Any]) -> dict[str, Any]:
    """The columns every UPDATE of ``model`` maintains, keyed by attribute name."""
    attrs = inspect(model).column_attrs
    values: dict[str, Any] = {}
    if "updated_at" in attrs:
        values["updated_at"] = utcnow()
    if "updater_id" in attrs:
        values["updater_id"] = current_actor()
    mapper = inspect(model)
    if mapper.version_id_col is not None:
        column = mapper.version_id_col
        values[mapper.get_property_by_column(column).key] = column + 1
    return values


def update_values(model: type[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` checked against the model, plus the bookkeeping columns (caller's win)."""
    check_fields(model, values)
    return {**bookkeeping_values(model), **values}
