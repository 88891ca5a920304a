"""Request-scoped dependencies: one session per request, committed on success.

Example::

    @router.post("/things")
    async def create(body: ThingIn, session: SessionDep, users: UserDaoDep) -> ThingOut:
        return await users.create(**body.model_dump(), session=session)
        # 2xx: COMMIT before the response is sent; any error: ROLLBACK
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from internal.dao.user import UserDao
from internal.infra.database import get_read_session, get_session
from pkg.database import transaction

__all__ = ["ReadSessionDep", "SessionDep", "UserDaoDep", "get_user_dao", "read_session", "request_session"]


async def request_session() -> AsyncIterator[AsyncSession]:
    """One transaction per request; DAO calls in the request join it."""
    async with transaction(get_session) as session:
        yield session


async def read_session() -> AsyncIterator[AsyncSession]:
    """One read session per read-only request: a replica when configured (one for the whole
    request; the primary while this request's ``X-Read-After`` token is not replayed)."""
    async with get_read_session() as session:
        yield session


@cache
def get_user_dao() -> UserDao:
    """The (stateless) user DAO, built once."""
    return UserDao(session_provider=get_session)


# scope="function": the COMMIT runs before the response is sent, so its errors reach the client.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
UserDaoDep = Annotated[UserDao, Depends(get_user_dao)]
ReadSessionDep = Annotated[AsyncSession, Depends(read_session, scope="function")]
