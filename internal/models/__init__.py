"""Application models; import them here so ``Base.metadata`` knows every table."""

from internal.models.user import User

__all__ = ["User"]
