"""The app's database lifecycle: init, sessions, close, reset and pool limits, per backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, String, event, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from internal.config.load_config import Settings
from internal.infra import database as infra
from pkg.database import BaseDao
from pkg.database.errors import DatabaseNotInitializedError, PoolTimeoutError
from pkg.database.routing import consistency_scope
from tests.conftest import Backend


class _Base(DeclarativeBase):
    pass


class Note(_Base):
    __tablename__ = "lifecycle_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body: Mapped[str] = mapped_column(String(50))


def settings_for(backend: Backend, **extra: object) -> Settings:
    url = backend.url.render_as_string(hide_password=False)
    return Settings(db_url=url, db_slow_query_threshold=5.0, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Backend]:
    """Initialise the app database on the backend with a fresh notes table."""
    infra.reset_async_db()
    await infra.init_async_db(settings_for(backend))
    async with infra.get_engine().begin() as conn:
        await conn.run_sync(_Base.metadata.drop_all)
        await conn.run_sync(_Base.metadata.create_all)
    yield backend
    await infra.close_async_db()


async def count_notes() -> int:
    async with infra.get_session() as session:
        return int((await session.execute(text("SELECT COUNT(*) FROM lifecycle_notes"))).scalar_one())


async def test_get_session_before_init_names_init_async_db() -> None:
    infra.reset_async_db()
    with pytest.raises(DatabaseNotInitializedError, match="init_async_db"):
        async with infra.get_session():
            pass


async def test_init_is_idempotent_and_concurrent_safe(backend: Backend) -> None:
    infra.reset_async_db()
    settings = settings_for(backend)
    try:
        results = await asyncio.gather(*(infra.init_async_db(settings) for _ in range(20)))
        assert len({id(r) for r in results}) == 1
        assert await infra.init_async_db(settings) is results[0]
    finally:
        await infra.close_async_db()


async def test_session_never_commits_by_itself(db: Backend) -> None:
    async with infra.get_session() as session:
        session.add(Note(id=1, body="uncommitted"))
        await session.flush()
    assert await count_notes() == 0
    async with infra.get_session() as session:
        session.add(Note(id=2, body="committed"))
        await session.commit()
    assert await count_notes() == 1


async def test_session_rolls_back_on_error(db: Backend) -> None:
    with pytest.raises(ZeroDivisionError):
        async with infra.get_session() as session:
            session.add(Note(id=1, body="doomed"))
            await session.flush()
            _ = 1 / 0
    assert await count_notes() == 0


async def test_autoflush_false_really_disables_autoflush(db: Backend) -> None:
    async with infra.get_session(autoflush=False) as session:
        session.add(Note(id=1, body="pending"))
        found = (await session.execute(select(Note).where(Note.id == 1))).scalar_one_or_none()
        assert found is None  # not flushed before the query
    async with infra.get_session() as session:
        session.add(Note(id=1, body="pending"))
        found = (await session.execute(select(Note).where(Note.id == 1))).scalar_one_or_none()
        assert found is not None


async def test_close_twice_then_not_initialised(db: Backend) -> None:
    first = await infra.close_async_db()
    assert first is not None and first.checked_out == 0 and not first.forced
    assert await infra.close_async_db() is None
    with pytest.raises(DatabaseNotInitializedError):
        infra.get_engine()


async def test_close_reports_checked_out_connection(db: Backend, caplog) -> None:
    engine = infra.get_engine()
    conn = await engine.connect()
    await conn.execute(text("SELECT 1"))
    report = await infra.close_async_db(timeout=2)
    assert report is not None and report.checked_out == 1
    assert "still checked out" in caplog.text
    await conn.invalidate()  # the holder gives up its connection; nothing is left open
    await conn.close()


async def test_pool_status_shape(db: Backend) -> None:
    status = infra.pool_status()
    assert {"size", "checked_out", "overflow", "idle"} <= status.keys()
    async with infra.get_session() as session:
        await session.execute(text("SELECT 1"))
        assert infra.pool_status()["checked_out"] == 1
    assert infra.pool_status()["checked_out"] == 0


async def test_read_session_uses_read_url(tmp_path: Path) -> None:
    primary, replica = tmp_path / "primary.db", tmp_path / "replica.db"
    settings = Settings(db_url=f"sqlite+aiosqlite:///{primary}", db_read_url=f"sqlite+aiosqlite:///{replica}")
    infra.reset_async_db()
    await infra.init_async_db(settings)
    try:
        async with infra.get_session() as session:
            await session.execute(text("CREATE TABLE marker (name TEXT)"))
            await session.execute(text("INSERT INTO marker VALUES ('primary')"))
            await session.commit()
        async with infra.get_read_session() as session:  # read-your-writes: the primary
            tables = (await session.execute(text("SELECT name FROM sqlite_master"))).scalars().all()
        assert "marker" in tables  # no WAL position on SQLite: the sticky window after a commit
        with consistency_scope():  # another context (request, task): the replica
            async with infra.get_read_session() as session:
                tables = (await session.execute(text("SELECT name FROM sqlite_master"))).scalars().all()
        assert "marker" not in tables  # the replica is a different database
        assert "read" in infra.pool_status()
    finally:
        await infra.close_async_db()


async def test_pool_exhaustion_raises_typed_error_then_recovers(server_backend: Backend) -> None:
    infra.reset_async_db()
    settings = settings_for(server_backend, db_pool_size=2, db_max_overflow=0, db_pool_timeout=1.0)
    await infra.init_async_db(settings)
    try:
        engine = infra.get_engine()
        held = [await engine.connect() for _ in range(2)]
        started = time.monotonic()
        with pytest.raises(PoolTimeoutError) as info:
            async with infra.get_session() as session:
                await session.execute(text("SELECT 1"))
        elapsed = time.monotonic() - started
        assert 0.8 <= elapsed < 3.0
        assert info.value.__cause__ is not None
        for conn in held:
            await conn.close()
        async with infra.get_session() as session:
            assert (await session.execute(text("SELECT 5"))).scalar_one() == 5
    finally:
        await infra.close_async_db()


def _use_db_in_fresh_loop(settings: Settings) -> int:
    async def job() -> int:
        infra.reset_async_db()
        await infra.init_async_db(settings)
        async with infra.get_session() as session:
            return int((await session.execute(text("SELECT 41 + 1"))).scalar_one())

    return asyncio.run(job())


def test_reset_then_init_works_in_a_new_event_loop(backend: Backend) -> None:
    settings = settings_for(backend)
    try:
        assert _use_db_in_fresh_loop(settings) == 42  # engine left behind on a closed loop
        assert _use_db_in_fresh_loop(settings) == 42  # reset never touches those sockets
    finally:
        infra.reset_async_db()


async def test_unreachable_server_raises_connection_lost() -> None:
    from pkg.database.errors import ConnectionLostError

    infra.reset_async_db()
    settings = Settings(db_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", db_pool_timeout=2.0)
    await infra.init_async_db(settings)
    try:
        with pytest.raises(ConnectionLostError) as info:
            async with infra.get_session() as session:
                await session.execute(text("SELECT 1"))
        assert isinstance(info.value.__cause__, ConnectionError)
    finally:
        await infra.close_async_db()


class _NoteDao(BaseDao[Note]):
    model_cls = Note


async def test_dao_on_get_session_runs_own_calls_without_a_session(db: Backend) -> None:
    """``get_session`` names its session maker, so a DAO's own calls skip the session; after
    a re-init they use the new database's maker (nothing cached from the old one)."""
    sent: list[bool] = []

    def before_execute(conn: Any, clause: Any, multi: Any, params: Any, options: Any) -> None:
        sent.append("_result_disable_adapt_to_context" in options or "compiled_cache" in options)

    notes = _NoteDao(session_provider=infra.get_session)
    for _ in range(2):
        engine = infra.get_engine().sync_engine
        event.listen(engine, "before_execute", before_execute)
        sent.clear()
        made = await notes.create(id=len(sent) + 1, body="hi")
        assert (await notes.get(made.id)) is not None and await notes.count() == 1
        assert sent == [False, False, False]  # no Session sent any of them
        async with infra.get_session() as session:
            assert (await notes.get(made.id, session=session)) is not None
        assert sent[-1] is True  # a joined call does go through the session
        event.remove(engine, "before_execute", before_execute)
        await infra.close_async_db()
        await infra.init_async_db(settings_for(db))
        async with infra.get_engine().begin() as conn:
            await conn.run_sync(_Base.metadata.drop_all)
            await conn.run_sync(_Base.metadata.create_all)
