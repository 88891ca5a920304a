"""One rule for "in-memory SQLite": URI memory databases work, files named *memory* keep the kit pool."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from pkg.database import new_async_engine, pool_status
from pkg.database.database import Database
from pkg.database.pool import KitAsyncQueuePool, is_memory_sqlite, kit_pool_options


@pytest.mark.parametrize(
    ("url", "memory"),
    [
        ("sqlite+aiosqlite://", True),
        ("sqlite+aiosqlite:///:memory:", True),
        ("sqlite+aiosqlite:///file:m?mode=memory&uri=true", True),
        ("sqlite+aiosqlite:///file:m?mode=memory&cache=shared&uri=true", True),
        ("sqlite+aiosqlite:////tmp/memory_notes.db", False),
        ("sqlite+aiosqlite:///memory.db", False),
        ("sqlite+aiosqlite:///file:notes.db?mode=rwc&uri=true", False),
        ("postgresql+asyncpg://u@h/memory", False),
    ],
)
def test_one_rule_for_memory_urls(url: str, memory: bool) -> None:
    assert is_memory_sqlite(url) is memory
    assert kit_pool_options(url) == ({} if memory else {"poolclass": KitAsyncQueuePool})


async def test_uri_memory_database_works_and_is_shared_by_sessions() -> None:
    engine = new_async_engine("sqlite+aiosqlite:///file:m?mode=memory&uri=true", slow_query_threshold=None)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE notes (body TEXT)"))
            await conn.execute(text("INSERT INTO notes VALUES ('kept')"))
        async with engine.connect() as conn:  # the same in-memory database, not a fresh one
            assert (await conn.execute(text("SELECT body FROM notes"))).scalar_one() == "kept"
        assert pool_status(engine)["timeouts"] == 0
    finally:
        await engine.dispose()


async def test_file_named_memory_keeps_the_kit_pool_and_its_counters(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'memory_notes.db'}"
    db = Database(url, pool_size=1, max_overflow=0, pool_timeout=0.2, slow_query_threshold=None)
    try:
        assert isinstance(db.engine.sync_engine.pool, KitAsyncQueuePool)
        async with db.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            with pytest.raises(sa_exc.TimeoutError):
                async with db.engine.connect():
                    pass
        assert db.pool_status()["timeouts"] == 1
    finally:
        await db.close()
