"""Column types that behave the same on every backend.

``JSONType`` stores a real JSON document (JSONB on PostgreSQL, native JSON on
MySQL/MariaDB and SQLite, CLOB on Oracle), encoded with orjson. ``UTCDateTime``
stores aware datetimes as UTC and always returns aware UTC datetimes::

    profile: Mapped[dict[str, Any]] = mapped_column(JSONType)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)

A plain ``DateTime(timezone=True)`` column keeps the instant too, on engines made by
``new_async_engine`` (see :func:`adapt_datetimes`): MySQL/MariaDB and SQLite store no
zone, so an aware value is stored as UTC wall time and read back *naive* UTC there
(aware on PostgreSQL). Use ``UTCDateTime`` to get aware UTC back everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, Text
from sqlalchemy.dialects import mysql, oracle, postgresql, sqlite
from sqlalchemy.types import TypeDecorator, TypeEngine

from pkg.database.utils import json_dumps, json_loads

__all__ = ["BigIntPK", "JSONType", "UTCDateTime", "adapt_datetimes", "utcnow"]

# BIGINT primary keys; SQLite only autoincrements "INTEGER PRIMARY KEY" (the rowid alias).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


# (driver, result type code) whose values arrive as aware UTC datetimes: asyncpg decodes
# timestamptz (oid 1184) with tzinfo=UTC, except +-infinity (naive datetime.max / .min).
# A zone-less timestamp (1114) still goes through process_result_value.
_AWARE_UTC_RESULTS = frozenset({("asyncpg", 1184)})


def _naive_as_utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive input is taken as UTC.

    Stored with microseconds on every backend: ``timestamptz`` on PostgreSQL, UTC wall
    time in ``DATETIME(6)`` (MySQL/MariaDB), ``TIMESTAMP`` (Oracle) and text (SQLite).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "oracle":  # DATE would drop the fraction; store UTC wall time
            return dialect.type_descriptor(oracle.TIMESTAMP(timezone=False))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime expects a datetime, got {type(value).__name__}")
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name in ("mysql", "sqlite", "oracle"):  # zone-less storage: UTC wall time
            return value.replace(tzinfo=None)
        return value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """One lean call per value where the driver already returns aware UTC for the
        column's type (only ``infinity`` arrives naive); else :meth:`process_result_value`."""
        if (dialect.driver, coltype) in _AWARE_UTC_RESULTS:
            return _naive_as_utc
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value if value.tzinfo is UTC else value.astimezone(UTC)


def _to_utc_wall(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


class _BindsUTC:
    """Mixin for a zone-less dialect's DATETIME: aware values of ``timezone=True`` bind as UTC."""

    timezone: bool

    def bind_processor(self, dialect: Dialect) -> Any:
        inner = super().bind_processor(dialect)  # type: ignore[misc]
        if not self.timezone:
            return inner

        def process(value: Any) -> Any:
            value = _to_utc_wall(value)
            return inner(value) if inner is not None else value

        return process

    def literal_processor(self, dialect: Dialect) -> Any:
        inner = super().literal_processor(dialect)  # type: ignore[misc]
        if not self.timezone or inner is None:
            return inner
        return lambda value: inner(_to_utc_wall(value))


class _SQLiteUTCDateTime(_BindsUTC, sqlite.DATETIME):
    pass


class _MySQLUTCDateTime(_BindsUTC, mysql.DATETIME):
    pass


# Dialects that store datetimes without a zone: their DateTime, binding aware values as UTC.
_ZONE_LESS: dict[str, type[TypeEngine[Any]]] = {
    "sqlite": _SQLiteUTCDateTime,
    "mysql": _MySQLUTCDateTime,
    "mariadb": _MySQLUTCDateTime,
}


def adapt_datetimes(dialect: Dialect) -> None:
    """Make ``DateTime(timezone=True)`` keep the instant of aware datetimes on ``dialect``.

    MySQL/MariaDB and SQLite have no zone-aware column type and their drivers drop the
    offset (07:08+08:00 would be stored as 07:08). On those dialects this converts aware
    values to UTC when they are bound, for every statement alike (insert, update,
    upsert, filters). Only this dialect instance changes: ``new_async_engine`` calls it
    for the engines it makes, nothing global is patched.
    """
    impl = _ZONE_LESS.get(dialect.name)
    if impl is not None:
        dialect.colspecs = {**dialect.colspecs, DateTime: impl}


class JSONType(TypeDecorator[Any]):
    """A JSON document on every dialect; orjson is the codec.

    PostgreSQL: JSONB. MySQL/MariaDB and SQLite: JSON (a document, never a quoted
    string). Oracle: CLOB holding the orjson text.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        if dialect.name == "oracle":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "oracle" and value is not None:
            return json_dumps(value)
        return value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> Any:  # JSON columns have NUMERIC affinity on SQLite
            if value is None or isinstance(value, int | float):
                return value
            return json_loads(value)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "oracle" and isinstance(value, str | bytes):
            return json_loads(value)
        return value
