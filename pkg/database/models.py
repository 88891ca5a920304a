"""Declarative ``Base`` with a constraint naming convention, and the model mixins.

Example::

    class User(TimestampMixin, SoftDeleteMixin, VersionMixin, AuditMixin, Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
        email: Mapped[str] = mapped_column(String(255), unique=True)  # uq_users_email
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from pkg.database.actor import current_actor
from pkg.database.naming import NAMING_CONVENTION
from pkg.database.types import JSONType, UTCDateTime, utcnow

__all__ = [
    "NAMING_CONVENTION",
    "AuditMixin",
    "Base",
    "SoftDeleteMixin",
    "TimestampMixin",
    "VersionMixin",
]


class Base(DeclarativeBase):
    """Declarative base: named constraints (at most 63 characters on every backend, see
    :mod:`pkg.database.naming`), aware-UTC datetimes and JSON by annotation."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType()}


class TimestampMixin:
    """``created_at`` / ``updated_at`` (aware UTC), kept on ORM flushes and bulk updates."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )


class SoftDeleteMixin:
    """``deleted_at``: set means deleted; DAO reads skip such rows unless asked.

    Not indexed on purpose: nearly every row is NULL, and MariaDB then prefers that index
    over the primary key for ``deleted_at IS NULL ORDER BY id`` (a scan instead of a seek).
    """

    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class VersionMixin:
    """``version``: SQLAlchemy's version counter, i.e. optimistic locking."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class AuditMixin:
    """``creator_id`` / ``updater_id`` from ``acting_as(...)``; no actor means NULL."""

    creator_id: Mapped[int | None] = mapped_column(BigInteger, default=current_actor)
    updater_id: Mapped[int | None] = mapped_column(BigInteger, default=current_actor, onupdate=current_actor)
