"""Ambient transactions, savepoints, execute_transaction and the no-COMMIT-on-read rule."""

from __future__ import annotations

import pytest
from sqlalchemy import String, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from internal.dao.user import UserDao
from pkg.database import BaseDao, transaction
from pkg.database.errors import DuplicateKeyError
from pkg.database.transactions import ambient_session


class _Base(DeclarativeBase):
    pass


class Tag(_Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class TagDao(BaseDao[Tag]):
    model_cls = Tag


@pytest.fixture
async def tags(create_tables, maker) -> TagDao:
    await create_tables(_Base.metadata)
    return TagDao(session_provider=maker)


async def test_ambient_rollback_undoes_two_daos_writes(users: UserDao, tags: TagDao) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with users.transaction() as session:
            await users.create(username="a", email="a@x.io")
            await tags.create(name="t1")
            assert ambient_session() is session
            raise RuntimeError("boom")
    assert ambient_session() is None
    assert await users.count() == 0 and await tags.count() == 0


async def test_ambient_commit_keeps_both_writes(users: UserDao, tags: TagDao) -> None:
    async with transaction(users.session_provider):
        user = await users.create(username="a", email="a@x.io")
        await tags.create(name="t1")
        assert (await users.get_or_raise(user.id)).email == "a@x.io"
    assert await users.count() == 1 and await tags.count() == 1


async def test_nested_transaction_is_a_savepoint(users: UserDao, tags: TagDao) -> None:
    async with users.transaction():
        await users.create(username="outer", email="o@x.io")
        with pytest.raises(DuplicateKeyError):
            async with tags.transaction():
                await tags.create(name="t")
                await tags.create(name="t")
        await tags.create(name="kept")
    assert [u.username for u in await users.query().all()] == ["outer"]
    assert [t.name for t in await tags.query().all()] == ["kept"]


async def test_execute_transaction_returns_callback_result(users: UserDao) -> None:
    async def work(session: AsyncSession) -> int:
        await users.create(username="a", email="a@x.io")
        await users.create(username="b", email="b@x.io", session=session)
        return 99

    assert await users.execute_transaction(work) == 99
    assert await users.count() == 2


async def test_execute_transaction_rolls_back_and_keeps_exception_type(users: UserDao) -> None:
    async def work(session: AsyncSession) -> None:
        await users.create(username="a", email="a@x.io")
        raise KeyError("mine")

    with pytest.raises(KeyError):
        await users.execute_transaction(work, autoflush=False)
    assert await users.count() == 0


async def test_reads_never_commit(users: UserDao, engine: AsyncEngine) -> None:
    user = await users.create(username="r", email="r@x.io")
    commits: list[object] = []

    def on_commit(conn: object) -> None:
        commits.append(conn)

    event.listen(engine.sync_engine, "commit", on_commit)
    try:
        await users.get(user.id)
        await users.get_many([user.id])
        await users.count()
        await users.exists(username="r")
        await users.query().filter(username="r").all()
        await users.query().dicts()
        await users.query().page(1, 10)
        await users.query().keyset(10)
        assert commits == []
        await users.update_by_id(user.id, username="w")
        assert len(commits) == 1
    finally:
        event.remove(engine.sync_engine, "commit", on_commit)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM users"))).scalar_one() == 1
