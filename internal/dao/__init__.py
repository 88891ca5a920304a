"""Application DAOs."""

from internal.dao.order import OrderDao
from internal.dao.user import UserDao

__all__ = ["OrderDao", "UserDao"]
