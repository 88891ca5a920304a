"""MySQL/MariaDB: no ROLLBACK round trip when the driver proves nothing ran since COMMIT/ROLLBACK.

Counted on the server (``Com_rollback`` of the one pooled connection's session), and the
promise of the pool reset kept: a read view opened by a raw driver query after a COMMIT is
still released when the connection goes back.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import new_async_session_maker
from tests.conftest import Backend

MYSQL = pytest.mark.parametrize("backend", ["mysql"], indirect=True)


async def _rollbacks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        row = (await conn.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'"))).one()
    return int(row[1])


@MYSQL
async def test_own_session_calls_send_one_rollback_not_two(backend: Backend, create_tables) -> None:
    engine = backend.engine(pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(User.metadata.drop_all)
            await conn.run_sync(User.metadata.create_all)
        users = UserDao(session_provider=new_async_session_maker(engine))
        user = await users.create(username="r", email="r@x.io")
        base = -(await _rollbacks(engine)) + await _rollbacks(engine)  # the probe's own cost
        before = await _rollbacks(engine)
        for _ in range(5):
            assert (await users.get(user.id)) is not None
        assert await users.count(username="r") == 1
        await users.update_by_id(user.id, username="s")  # SELECT + UPDATE + COMMIT: no ROLLBACK
        after = await _rollbacks(engine)
        assert after - before - base == 6  # one per read (releases its read view), none after COMMIT
    finally:
        await engine.dispose()


@MYSQL
async def test_a_query_after_commit_is_still_rolled_back(backend: Backend, create_tables) -> None:
    engine, writer = backend.engine(pool_size=1, max_overflow=0), backend.engine()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(User.metadata.drop_all)
            await conn.run_sync(User.metadata.create_all)
        users = UserDao(session_provider=new_async_session_maker(writer))
        await users.create(username="a", email="a@x.io")
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await conn.commit()
            raw = await conn.get_raw_connection()
            cursor = await raw.driver_connection.cursor()  # type: ignore[union-attr]
            await cursor.execute("SELECT count(*) FROM users")  # opens a REPEATABLE READ view
            assert (await cursor.fetchone())[0] == 1
            await cursor.close()
        await users.create(username="b", email="b@x.io")  # committed by another connection
        async with engine.connect() as conn:  # the same pooled connection: its view was released
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 2
    finally:
        await engine.dispose()
        await writer.dispose()
