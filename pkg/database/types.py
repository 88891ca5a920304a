"""Column types that behave the same on every backend.

``JSONType`` stores a real JSON document (JSONB on PostgreSQL, native JSON on
MySQL/MariaDB and SQLite, CLOB on Oracle), encoded with orjson. ``UTCDateTime``
stores aware datetimes as UTC and always returns aware UTC datetimes::

    profile: Mapped[dict[str, Any]] = mapped_column(JSONType)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, Text
from sqlalchemy.dialects import mysql, oracle, postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from pkg.database.utils import json_dumps, json_loads

__all__ = ["BigIntPK", "JSONType", "UTCDateTime", "utcnow"]

# BIGINT primary keys; SQLite only autoincrements "INTEGER PRIMARY KEY" (the rowid alias).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


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

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value if value.tzinfo is UTC else value.astimezone(UTC)


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
