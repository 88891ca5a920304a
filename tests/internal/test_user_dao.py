"""The example UserDao's domain queries on every backend."""

from __future__ import annotations

from datetime import timedelta

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import new_async_session_maker, utcnow


async def test_user_dao_domain_queries(engine, create_tables) -> None:
    await create_tables(User.metadata)
    users = UserDao(session_provider=new_async_session_maker(engine))
    start = utcnow() - timedelta(hours=1)
    await users.create_many(
        {
            "username": n,
            "email": f"{n}@x.io",
            "is_active": n != "bob",
            "created_at": start + timedelta(minutes=i),
        }
        for i, n in enumerate(["ann", "bob", "anna_50%", "cid"])
    )
    found = await users.get_by_email("bob@x.io")
    assert found is not None and found.username == "bob"
    assert await users.get_by_email("nobody@x.io") is None
    assert [u.username for u in await users.search_by_name("ANN")] == ["ann", "anna_50%"]
    assert [u.username for u in await users.search_by_name("a_5")] == ["anna_50%"]
    assert await users.search_by_name("n%") == []
    page = await users.active_page(1, 2)
    assert page.total == 3 and page.pages == 2
    assert [u.username for u in page.items] == ["cid", "anna_50%"]
