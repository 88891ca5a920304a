"""The example model: copy this shape for your own tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Identity, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pkg.database import AuditMixin, Base, BigIntPK, JSONType, SoftDeleteMixin, TimestampMixin, VersionMixin

if TYPE_CHECKING:
    from internal.models.order import Order


class User(TimestampMixin, SoftDeleteMixin, VersionMixin, AuditMixin, Base):
    """An application user; ``email`` is unique (constraint ``uq_users_email``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)

    orders: Mapped[list[Order]] = relationship(back_populates="user", order_by="Order.id")

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r})"
