"""Application DAOs."""

from internal.dao.user import UserDao

__all__ = ["UserDao"]
