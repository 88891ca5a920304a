"""Ambient transactions, savepoints, execute_transaction and the no-COMMIT-on-read rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import pytest
from sqlalchemy import String, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from internal.dao.user import UserDao
from pkg.database import BaseDao, new_async_session_maker, transaction
from pkg.database.errors import ConcurrentSessionUseError, DuplicateKeyError, TransientDatabaseError
from pkg.database.transactions import SessionProvider, ambient_session
from tests.conftest import resolve_backend


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


# -- the ambient transaction is keyed by database -------------------------------------
class _NotesBase(DeclarativeBase):
    pass


class Note(_NotesBase):
    __tablename__ = "kit_notes_other_db"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(50))


class NoteDao(BaseDao[Note]):
    model_cls = Note


@pytest.fixture
async def other_db(backend, server_backends, tmp_path) -> AsyncIterator[AsyncEngine]:
    """A second, real database of another kind than the matrix one (PostgreSQL <-> MariaDB)."""
    other = resolve_backend(
        "mysql" if backend.name == "postgresql" else "postgresql", server_backends, tmp_path
    )
    engine = other.engine()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_NotesBase.metadata.drop_all)
            await conn.run_sync(_NotesBase.metadata.create_all)
        yield engine
    finally:
        await engine.dispose()


def _providers(engine: AsyncEngine) -> dict[str, SessionProvider]:
    maker = new_async_session_maker(engine)

    def function_provider() -> AbstractAsyncContextManager[AsyncSession]:  # engine unknown up front
        return maker()

    return {"maker": maker, "function": function_provider}


async def _notes_in(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT body FROM kit_notes_other_db ORDER BY id"))).scalars())


@pytest.mark.parametrize("kind", ["maker", "function"])
async def test_dao_of_another_database_writes_there_on_its_own(users: UserDao, other_db, kind: str) -> None:
    notes = NoteDao(session_provider=_providers(other_db)[kind])
    with pytest.raises(RuntimeError, match="undo A"):
        async with users.transaction():
            await users.create(username="a", email="a@x.io")
            await notes.create(body="committed in B")  # B's own session, B's own COMMIT
            assert await notes.count() == 1 and ambient_session(notes.session_provider) is None
            async with transaction(notes.session_provider):  # a new transaction of B, not a SAVEPOINT of A
                await notes.create(body="nested B")
            raise RuntimeError("undo A")
    assert await users.count() == 0  # A rolled back
    assert await _notes_in(other_db) == ["committed in B", "nested B"]  # B's writes landed in B, committed


@pytest.mark.parametrize("kind", ["maker", "function"])
async def test_another_provider_of_the_same_database_joins(
    users: UserDao, engine: AsyncEngine, kind: str
) -> None:
    same = UserDao(session_provider=_providers(engine)[kind])
    with pytest.raises(RuntimeError):
        async with users.transaction() as session:
            await same.create(username="b", email="b@x.io")
            if kind == "maker":  # a plain function's engine is only known once called
                assert ambient_session(same.session_provider) is session
            async with transaction(same.session_provider) as nested:  # a SAVEPOINT of the same one
                assert nested is session
            raise RuntimeError("undo")
    assert await users.count() == 0


# -- one AsyncSession, two tasks -------------------------------------------------------
async def test_two_tasks_on_one_ambient_session_raise_a_typed_misuse_error(users: UserDao) -> None:
    user = await users.create(username="a", email="a@x.io")
    async with users.transaction():
        reads = await asyncio.gather(
            users.query().all(), users.count(), users.get(user.id), return_exceptions=True
        )
        writes = await asyncio.gather(
            users.create(username="b", email="b@x.io"),
            users.create(username="c", email="c@x.io"),
            return_exceptions=True,
        )
        for results in (reads, writes):
            errors = [r for r in results if isinstance(r, BaseException)]
            assert len(errors) == len(results) - 1, results  # the first task ran, the others refused
            assert all(isinstance(e, ConcurrentSessionUseError) for e in errors), errors
            assert not any(isinstance(e, TransientDatabaseError) for e in errors)  # never retried
        page = await users.query().page(1, 10)  # one task, nested calls: fine
        assert page.total == 2
    assert sorted(u.username for u in await users.query().all()) == ["a", "b"]


async def test_two_tasks_on_one_passed_session_raise_a_typed_misuse_error(users: UserDao, maker) -> None:
    async with maker() as session:
        results = await asyncio.gather(
            users.count(session=session), users.exists(session=session), return_exceptions=True
        )
        assert results[0] == 0 and isinstance(results[1], ConcurrentSessionUseError)
        assert "two tasks" in str(results[1])
        assert await users.count(session=session) == 0  # awaited in turn: fine
