"""``rollback_after``: code under test commits (DAO writes, ``transaction()``,
``execute_transaction``, a ``Database``'s sessions) and nothing persists past the block."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from internal.dao import UserDao
from internal.models import User
from pkg.database import Database, execute_transaction, new_async_session_maker, transaction
from pkg.database.errors import DuplicateKeyError
from pkg.database.testing import rollback_after
from tests.conftest import Backend


async def _stored_users(engine: AsyncEngine) -> int:
    """Rows committed for real, seen from a connection of its own."""
    async with new_async_session_maker(engine)() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def _commit_four_ways(maker: async_sessionmaker[AsyncSession], tag: str) -> UserDao:
    users = UserDao(session_provider=maker)
    await users.create(username="dao", email="same@x.io")  # the same key each round
    async with transaction(maker):
        await users.create(username="tx", email=f"tx-{tag}@x.io")
    await execute_transaction(maker, lambda s: users.create(username="cb", email=f"cb-{tag}@x.io", session=s))
    async with maker() as session:
        session.add(User(username="raw", email=f"raw-{tag}@x.io"))
        await session.commit()
    return users


async def test_commits_in_one_round_are_absent_in_the_next(engine: AsyncEngine, create_tables) -> None:
    await create_tables(User.metadata)
    for tag in ("first", "second"):
        async with rollback_after(engine) as maker:
            users = UserDao(session_provider=maker)
            assert await users.count() == 0  # nothing left from the first round
            await _commit_four_ways(maker, tag)
            assert await users.count() == 4  # the test sees its own commits
            with pytest.raises(DuplicateKeyError):  # a failed savepoint keeps the rest
                async with transaction(maker):
                    await users.create(username="dup", email="same@x.io")
            assert await users.count() == 4
        assert await _stored_users(engine) == 0


async def test_a_database_and_its_session_provider_are_bound_too(
    backend: Backend, engine: AsyncEngine, create_tables
) -> None:
    await create_tables(User.metadata)
    db = Database(backend.url, slow_query_threshold=None)
    try:
        async with rollback_after(db):
            users = UserDao(session_provider=db.session)  # what get_session wraps
            await _commit_four_ways(db.session, "db")
            async with db.read_session() as session:
                assert len((await session.execute(select(User.id))).all()) == 4
            assert await users.count() == 4
        assert await _stored_users(engine) == 0
        assert await UserDao(session_provider=db.session).count() == 0  # the maker is restored
        await UserDao(session_provider=db.session).create(username="real", email="real@x.io")
        assert await _stored_users(engine) == 1
    finally:
        await db.close()


@pytest.fixture
async def rolled_back(engine: AsyncEngine, create_tables) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The fixture recipe of the README: one outer transaction per test."""
    await create_tables(User.metadata)
    async with rollback_after(engine) as maker:
        yield maker
    assert await _stored_users(engine) == 0


async def test_the_fixture_recipe_isolates_a_committing_test(
    rolled_back: async_sessionmaker[AsyncSession],
) -> None:
    users = await _commit_four_ways(rolled_back, "fixture")
    assert await users.count() == 4
