"""The example DAO: a subclass setting ``model_cls`` plus a few domain queries."""

from __future__ import annotations

from internal.models.user import User
from pkg.database import BaseDao, Page


class UserDao(BaseDao[User]):
    """Data access for :class:`User`: ``UserDao(session_provider=get_session)``."""

    model_cls = User

    async def get_by_email(self, email: str) -> User | None:
        """The live user with this e-mail address, or None."""
        return await self.query().filter(email=email).one_or_none()

    async def search_by_name(self, text: str, *, limit: int = 20) -> list[User]:
        """Users whose username contains ``text`` (case-insensitive, taken literally)."""
        query = self.query().filter(username__icontains=text).order_by("username")
        return await query.limit(limit).all()

    async def active_page(self, page: int = 1, size: int = 50) -> Page[User]:
        """Active users, newest first."""
        return await self.query().filter(is_active=True).order_by("-created_at").page(page, size)
