"""Optimistic locking under real concurrency: two writers, one wins, the other gets StaleDataError."""

from __future__ import annotations

import asyncio

import pytest

from internal.dao.user import UserDao
from pkg.database.errors import StaleDataError


async def test_two_sessions_conflict_on_version(users: UserDao, maker) -> None:
    user = await users.create(username="v", email="v@x.io")
    async with maker() as first, maker() as second:
        a = await users.get_or_raise(user.id, session=first)
        b = await users.get_or_raise(user.id, session=second)
        a.username = "from-first"
        await first.commit()
        await first.close()  # release SQLite's write lock before the second writer
        b.username = "from-second"
        with pytest.raises(StaleDataError) as info:
            await users.update_by_id(user.id, username="from-second", session=second)
        assert info.value.__cause__ is not None or "version" in str(info.value)
    fresh = await users.get_or_raise(user.id)
    assert fresh.username == "from-first" and fresh.version == 2


async def test_concurrent_update_by_id_with_same_version(users: UserDao) -> None:
    user = await users.create(username="v", email="v@x.io")
    results = await asyncio.gather(
        *(users.update_by_id(user.id, username=f"w{i}", version=1) for i in range(2)),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], StaleDataError), results
    fresh = await users.get_or_raise(user.id)
    assert fresh.version == 2 and fresh.username in {"w0", "w1"}


async def test_interleaved_update_by_id_is_stale(users: UserDao, maker) -> None:
    user = await users.create(username="v", email="v@x.io")
    async with maker() as slow:
        loaded = await users.get_or_raise(user.id, session=slow)
        await slow.commit()
        await users.update_by_id(user.id, username="fast")  # its own transaction, commits
        loaded.username = "slow"
        with pytest.raises(StaleDataError):
            await users.update_by_id(user.id, username="slow", session=slow)
    assert (await users.get_or_raise(user.id)).username == "fast"
