"""``QueryBuilder.stream()``: one query per chunk, no connection held while the loop body runs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from internal.dao.user import UserDao
from pkg.database import pool_status, transaction


async def _seed(users: UserDao, n: int) -> None:
    await users.create_many({"username": f"u{i:03d}", "email": f"u{i:03d}@x.io"} for i in range(n))


async def test_stream_left_early_returns_its_connection_at_once(users: UserDao, engine: AsyncEngine) -> None:
    await _seed(users, 30)
    seen: list[int] = []
    async for user in users.query().order_by("id").stream(chunk_size=10):
        assert pool_status(engine)["checked_out"] == 0  # nothing held while the body runs
        seen.append(user.id)
        if len(seen) == 15:  # past the first chunk, in the middle of the second
            break
    assert pool_status(engine)["checked_out"] == 0  # right after the break: no gc, no sleep
    assert len(seen) == 15 and seen == sorted(seen)


async def test_stream_follows_sort_limit_and_offset_like_all(users: UserDao) -> None:
    await _seed(users, 57)
    for query in (
        users.query().order_by("-username"),
        users.query().order_by("is_active", "-id").offset(5).limit(23),
        users.query().filter(username__gte="u010").limit(50),
        users.query().order_by("creator_id"),  # nullable sort column: chunks by OFFSET
    ):
        expected = [u.id for u in await query.all()]
        assert [u.id async for u in query.stream(chunk_size=7)] == expected


async def test_stream_inside_a_transaction_sees_its_uncommitted_rows(users: UserDao) -> None:
    await _seed(users, 5)
    async with transaction(users.session_provider):
        await users.create(username="new", email="new@x.io")
        names = [u.username async for u in users.query().order_by("id").stream(chunk_size=2)]
        assert names[-1] == "new" and len(names) == 6
        assert await users.count() == 6  # the session is free again between chunks
