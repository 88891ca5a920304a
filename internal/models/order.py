"""Orders of a user, and their line items: the example of related models.

``User.orders`` (one-to-many) and ``Order.items`` load through the DAO without N+1::

    users = await user_dao.query().load("orders", "orders.items").limit(50).all()  # 3 statements
    big = await user_dao.query().filter(orders__total__gt=100).all()               # EXISTS
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, ForeignKey, Identity, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pkg.database import Base, BigIntPK, TimestampMixin

if TYPE_CHECKING:
    from internal.models.user import User


class Order(TimestampMixin, Base):
    """One order of a user; deleting the user deletes its orders (``ON DELETE CASCADE``)."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(String(20), default="new")

    user: Mapped[User] = relationship(back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(back_populates="order", order_by="OrderItem.id")

    def __repr__(self) -> str:
        return f"Order(id={self.id!r}, user_id={self.user_id!r}, total={self.total!r})"


class OrderItem(Base):
    """One line of an order."""

    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    order: Mapped[Order] = relationship(back_populates="items")
