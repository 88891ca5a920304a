"""Bad limit / offset / page / size, sort specs and NUL bytes: typed errors before any SQL, everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from internal.dao.user import UserDao
from pkg.database.errors import InvalidValueError, QueryError, UnknownFieldError

BIG = 2**31 - 1
BAD_COUNTS = [-1, True, False, 1.5, 2.0, "5", [5], 2**31, 10**20]


@pytest.fixture
def statements(engine: AsyncEngine) -> list[str]:
    """Every statement the engine sends, to prove that a refused call sent none."""
    sent: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    return sent


@pytest.fixture
async def seeded(users: UserDao) -> UserDao:
    await users.create_many({"username": f"u{i}", "email": f"u{i}@x.io"} for i in range(3))
    return users


@pytest.mark.parametrize("value", BAD_COUNTS, ids=repr)
@pytest.mark.parametrize("method", ["limit", "offset"])
async def test_bad_limit_and_offset(seeded: UserDao, statements: list[str], method: str, value: Any) -> None:
    before = len(statements)
    with pytest.raises(QueryError, match=method):
        await getattr(seeded.query(), method)(value).all()
    assert len(statements) == before


async def test_edge_limits_and_offsets_run(seeded: UserDao) -> None:
    assert await seeded.query().limit(0).all() == []
    assert len(await seeded.query().limit(BIG).all()) == 3
    assert await seeded.query().order_by("id").offset(BIG).all() == []
    assert len(await seeded.query().offset(0).limit(None).all()) == 3
    assert await seeded.query().limit(2).count() == 2


@pytest.mark.parametrize(
    ("page", "size"),
    [(0, 10), (-1, 10), (1, 0), (1, -5), (True, 10), (1, True), (1.0, 10), (1, 1.5), (1, BIG + 1), (BIG, 10)],
    ids=repr,
)
async def test_bad_page_arguments(seeded: UserDao, statements: list[str], page: Any, size: Any) -> None:
    before = len(statements)
    with pytest.raises(QueryError):
        await seeded.query().page(page, size)
    assert len(statements) == before


@pytest.mark.parametrize("size", [0, -1, True, 2.5, BIG, 2**40], ids=repr)
async def test_bad_keyset_size(seeded: UserDao, statements: list[str], size: Any) -> None:
    before = len(statements)
    with pytest.raises(QueryError, match="size"):
        await seeded.query().keyset(size)
    assert len(statements) == before


async def test_last_possible_page_runs(seeded: UserDao) -> None:
    page = await seeded.query().page(BIG // 10, 10)  # offset just within the maximum
    assert page.items == [] and page.total == 3


@pytest.mark.parametrize(
    "spec", ["--username", "+-username", "-+username", "-", "+", "", " username", "-nope"]
)
async def test_malformed_sort_specs(seeded: UserDao, spec: str) -> None:
    with pytest.raises(UnknownFieldError) as info:
        seeded.query().order_by(spec)
    assert info.value.kind == "order_by field" and "username" in info.value.valid


async def test_one_prefix_sorts(seeded: UserDao) -> None:
    down = [u.username for u in await seeded.query().order_by("-username").all()]
    up = [u.username for u in await seeded.query().order_by("+username").all()]
    assert down == ["u2", "u1", "u0"] and up == ["u0", "u1", "u2"]


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.query().filter(username="a\x00' OR 1=1 --").all(),
        lambda d: d.query().filter(username__contains="\x00").count(),
        lambda d: d.query().filter(username__startswith="u\x00").exists(),
        lambda d: d.query().filter(username__in=["u0", "u1\x00"]).all(),
        lambda d: d.query().filter(username__in=(f"u{i}\x00" for i in range(3))).all(),
        lambda d: d.query().filter(username__not_in=["\x00"] * 2000).count(),
        lambda d: d.query().or_(username="u0", email="\x00@x.io").all(),
        lambda d: d.count(email__ne="x\x00"),
        lambda d: d.exists(username__like="%\x00%"),
    ],
)
async def test_nul_byte_in_a_filter_value(seeded: UserDao, statements: list[str], call: Any) -> None:
    before = len(statements)
    with pytest.raises(InvalidValueError, match="NUL") as info:
        await call(seeded)
    assert "1=1" not in str(info.value) and "@x.io" not in str(info.value)  # never echoed
    assert len(statements) == before
