"""Application models; import them here so ``Base.metadata`` knows every table."""

from internal.models.order import Order, OrderItem
from internal.models.user import User

__all__ = ["Order", "OrderItem", "User"]
