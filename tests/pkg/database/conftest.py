"""Fixtures for the DAO / QueryBuilder tests: the example ``users`` table and its DAO."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import new_async_session_maker


@pytest.fixture
def maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session provider the DAO tests use."""
    return new_async_session_maker(engine)


@pytest.fixture
async def users(create_tables, maker: async_sessionmaker[AsyncSession]) -> UserDao:
    """A ``UserDao`` over a freshly created, empty ``users`` table."""
    await create_tables(User.metadata)
    return UserDao(session_provider=maker, cursor_secret="test-secret")
