"""Offset pages and keyset pages: determinism, cursors, tampering, inserts between pages."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from internal.dao.user import UserDao
from pkg.database import utcnow
from pkg.database.errors import InvalidCursorError, QueryError


async def _seed(users: UserDao, n: int, *, same_time: bool = False) -> None:
    base = utcnow() - timedelta(days=30)
    await users.create_many(
        {
            "username": f"user{i % 7}",
            "email": f"u{i}@x.io",
            "is_active": i % 3 != 0,
            "created_at": base if same_time else base + timedelta(seconds=i // 4),
        }
        for i in range(n)
    )


async def test_page_reports_totals_and_is_deterministic(users: UserDao) -> None:
    await _seed(users, 23, same_time=True)
    first = await users.query().order_by("created_at").page(1, 10)
    assert (first.total, first.page, first.size, first.pages) == (23, 1, 10, 3)
    pages = [first] + [await users.query().order_by("created_at").page(p, 10) for p in (2, 3, 4)]
    ids = [u.id for page in pages for u in page.items]
    assert len(ids) == 23 and len(set(ids)) == 23 and ids == sorted(ids)
    assert pages[3].items == [] and pages[3].total == 23
    with pytest.raises(QueryError):
        await users.query().page(0, 10)


async def test_page_with_filter(users: UserDao) -> None:
    await _seed(users, 30)
    page = await users.query().filter(is_active=False).order_by("-created_at").page(2, 4)
    assert page.total == 10 and page.pages == 3 and len(page.items) == 4
    assert all(not u.is_active for u in page.items)


async def _walk(query, size: int, between=None) -> list[int]:
    seen: list[int] = []
    cursor = None
    while True:
        page = await query.keyset(size, cursor)
        seen += [u.id for u in page.items]
        if page.next_cursor is None:
            return seen
        if between is not None:
            await between()
        cursor = page.next_cursor


@pytest.mark.parametrize(
    "order",
    [
        ("id",),
        ("-id",),
        ("-created_at",),
        ("username", "-created_at"),
        ("-is_active", "username", "created_at"),
    ],
)
async def test_keyset_matches_full_sort_for_mixed_directions(users: UserDao, order) -> None:
    await _seed(users, 97)
    query = users.query().order_by(*order)
    expected = [u.id for u in await query.order_by("id").all()]
    assert await _walk(query, 10) == expected


async def test_keyset_walk_over_10k_rows_with_inserts_between_pages(users: UserDao) -> None:
    await _seed(users, 10_000)
    query = users.query().order_by("-created_at", "username")
    snapshot = [u.id for u in await query.all()]
    counter = iter(range(10**6))

    async def insert_new() -> None:  # newer rows sort before the cursor: never seen, nothing skipped
        await users.create(username="late", email=f"late{next(counter)}@x.io", created_at=utcnow())

    seen = await _walk(query, 500, insert_new)
    assert seen == snapshot
    assert await users.count() == 10_000 + 19


async def test_keyset_sees_rows_inserted_ahead_of_the_cursor(users: UserDao) -> None:
    await _seed(users, 40)
    query = users.query().order_by("created_at")
    page = await query.keyset(10)
    late = await users.create(username="z", email="z@x.io", created_at=utcnow())
    rest = await _walk_from(query, page.next_cursor)
    ids = [u.id for u in page.items] + rest
    assert len(ids) == len(set(ids)) == 41 and ids[-1] == late.id


async def _walk_from(query, cursor) -> list[int]:
    out: list[int] = []
    while cursor is not None:
        page = await query.keyset(10, cursor)
        out += [u.id for u in page.items]
        cursor = page.next_cursor
    return out


async def test_tampered_or_foreign_cursor_is_rejected(users: UserDao) -> None:
    await _seed(users, 30)
    cursor = (await users.query().order_by("-created_at").keyset(5)).next_cursor
    assert cursor is not None
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[10] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in (forged, "not-a-cursor!!", "", cursor[:-3]):
        with pytest.raises(InvalidCursorError):
            await users.query().order_by("-created_at").keyset(5, bad)
    with pytest.raises(InvalidCursorError):  # a cursor of another sort order
        await users.query().order_by("created_at").keyset(5, cursor)
    other = UserDao(session_provider=users.session_provider, cursor_secret="another-secret")
    with pytest.raises(InvalidCursorError):
        await other.query().order_by("-created_at").keyset(5, cursor)


async def test_keyset_refuses_nullable_sort_columns(users: UserDao) -> None:
    with pytest.raises(QueryError, match="nullable"):
        await users.query().order_by("deleted_at").keyset(5)
