"""QueryBuilder: generative behaviour, every lookup operator, terminals and bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, text
from sqlalchemy.orm import load_only

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import utcnow
from pkg.database.errors import (
    InvalidValueError,
    MultipleResultsError,
    NotFoundError,
    UnknownFieldError,
    UnsafeQueryError,
)

NAMES = ["alice", "bob", "carol", "dave", "eve"]


@pytest.fixture
async def seeded(users: UserDao) -> UserDao:
    base = utcnow() - timedelta(days=1)
    rows = [
        {
            "username": n,
            "email": f"{n.lower()}@x.io",
            "is_active": i % 2 == 0,
            "created_at": base + timedelta(minutes=i),
        }
        for i, n in enumerate(NAMES)
    ]
    await users.create_many(rows)
    return users


async def names(query) -> list[str]:
    return sorted(u.username for u in await query.all())


async def test_builder_is_generative(seeded: UserDao) -> None:
    base = seeded.query()
    narrowed = base.filter(is_active=True)
    ordered = narrowed.order_by("-username").limit(1)
    assert base._conditions() == [] and base.sort == () and base.limit_ is None
    assert len(narrowed._conditions()) == 1 and narrowed.sort == () and base.params == ()
    assert len(await base.all()) == 5
    assert [u.username for u in await ordered.all()] == ["eve"]


@pytest.mark.parametrize(
    ("lookups", "expected"),
    [
        ({"username": "bob"}, ["bob"]),
        ({"username__exact": "bob"}, ["bob"]),
        ({"username__ne": "bob"}, ["eve", "alice", "carol", "dave"]),
        ({"username__gt": "carol"}, ["dave", "eve"]),
        ({"username__gte": "carol"}, ["carol", "dave", "eve"]),
        ({"username__lt": "bob"}, ["alice"]),
        ({"username__lte": "bob"}, ["alice", "bob"]),
        ({"username__in": ["bob", "dave", "zed"]}, ["bob", "dave"]),
        ({"username__in": []}, []),
        ({"username__not_in": ["bob", "dave"]}, ["eve", "alice", "carol"]),
        ({"username__not_in": []}, ["eve", "alice", "bob", "carol", "dave"]),
        ({"username__between": ("b", "d")}, ["bob", "carol"]),
        ({"deleted_at__isnull": True}, ["eve", "alice", "bob", "carol", "dave"]),
        ({"creator_id__isnull": False}, []),
        ({"username__like": "%a%"}, ["alice", "carol", "dave"]),
        ({"username__ilike": "E%"}, ["eve"]),
        ({"username__contains": "ar"}, ["carol"]),
        ({"username__icontains": "EV"}, ["eve"]),
        ({"username__startswith": "da"}, ["dave"]),
        ({"username__endswith": "ce"}, ["alice"]),
        ({"is_active": False}, ["bob", "dave"]),
    ],
)
async def test_lookup_operators(seeded: UserDao, lookups, expected) -> None:
    assert await names(seeded.query().filter(**lookups)) == sorted(expected)
    assert await seeded.count(**lookups) == len(expected)


async def test_contains_family_escapes_wildcards(users: UserDao) -> None:
    await users.create(username="50%_off", email="a@x.io")
    await users.create(username="500 off", email="b@x.io")
    await users.create(username="back\\slash", email="c@x.io")
    assert await names(users.query().filter(username__contains="%_")) == ["50%_off"]
    assert await names(users.query().filter(username__startswith="50%")) == ["50%_off"]
    assert await names(users.query().filter(username__endswith="_off")) == ["50%_off"]
    assert await names(users.query().filter(username__icontains="K\\S")) == ["back\\slash"]
    assert await names(users.query().filter(username__like="50%")) == ["50%_off", "500 off"]


async def test_where_and_or_groups(seeded: UserDao) -> None:
    query = seeded.query().where(User.is_active.is_(True)).or_(username="alice", email__startswith="eve")
    assert await names(query) == ["alice", "eve"]
    grouped = seeded.query().or_({"username": "bob", "is_active": False}, User.username == "carol")
    assert await names(grouped) == ["bob", "carol"]


async def test_order_by_limit_offset(seeded: UserDao) -> None:
    got = await seeded.query().order_by("-created_at").offset(1).limit(2).all()
    assert [u.username for u in got] == ["dave", "carol"]
    got = await seeded.query().order_by("is_active", "-username").all()
    assert [u.username for u in got] == ["dave", "bob", "eve", "carol", "alice"]


async def test_terminals_first_one_one_or_none(seeded: UserDao) -> None:
    first = await seeded.query().order_by("created_at").first()
    assert first is not None and first.username == "alice"
    assert (await seeded.query().filter(username="bob").one()).email == "bob@x.io"
    assert await seeded.query().filter(username="nobody").one_or_none() is None
    assert await seeded.query().filter(username="nobody").first() is None
    with pytest.raises(NotFoundError):
        await seeded.query().filter(username="nobody").one()
    with pytest.raises(MultipleResultsError):
        await seeded.query().filter(is_active=True).one()


async def test_count_exists_dicts(seeded: UserDao) -> None:
    assert await seeded.query().count() == 5
    assert await seeded.query().filter(is_active=True).limit(2).count() == 2
    assert await seeded.query().filter(username="bob").exists() is True
    assert await seeded.exists(username="zed") is False
    rows = await seeded.query().filter(username="bob").dicts()
    assert len(rows) == 1 and type(rows[0]) is dict
    assert rows[0]["email"] == "bob@x.io" and rows[0]["created_at"].tzinfo is not None


async def test_stream_yields_everything_in_chunks(users: UserDao) -> None:
    await users.create_many({"username": f"u{i}", "email": f"u{i}@x.io"} for i in range(230))
    seen = [u.username async for u in users.query().order_by("id").stream(chunk_size=50)]
    assert len(seen) == 230 and seen[0] == "u0" and seen[-1] == "u229"


async def test_soft_deleted_rows_and_visibility_switches(seeded: UserDao) -> None:
    assert await seeded.query().filter(username__in=["bob", "dave"]).soft_delete() == 2
    assert await seeded.query().count() == 3
    assert await names(seeded.query().only_deleted()) == ["bob", "dave"]
    assert await seeded.query().include_deleted().count() == 5
    assert await seeded.query().include_deleted().filter(username="bob").exists()
    assert not await seeded.query().filter(username="bob").exists()


async def test_builder_update_and_delete_rowcounts(seeded: UserDao) -> None:
    before = await seeded.query().filter(username="bob").one()
    assert await seeded.query().filter(is_active=False).update(profile={"x": 1}) == 2
    after = await seeded.query().filter(username="bob").one()
    assert after.profile == {"x": 1} and after.version == before.version + 1
    assert after.updated_at > before.updated_at
    assert await seeded.query().filter(username__startswith="zz").update(is_active=True) == 0
    assert await seeded.query().filter(is_active=False).delete() == 2
    assert await seeded.query().count() == 3


async def test_unconditional_writes_are_refused(seeded: UserDao) -> None:
    with pytest.raises(UnsafeQueryError):
        await seeded.query().delete()
    with pytest.raises(UnsafeQueryError):
        await seeded.query().update(is_active=False)
    with pytest.raises(UnsafeQueryError):
        await seeded.query().soft_delete()
    no_filters: dict[str, object] = {}  # e.g. a request's optional filters, none given
    with pytest.raises(UnsafeQueryError):
        await seeded.query().filter(**no_filters).delete()
    with pytest.raises(UnsafeQueryError):
        await seeded.query().filter(**no_filters).where().update(is_active=False)
    assert await seeded.query().count() == 5
    assert await seeded.query().update(allow_all=True, is_active=True) == 5
    assert await seeded.query().soft_delete(allow_all=True) == 5
    assert await seeded.query().include_deleted().delete(allow_all=True) == 5


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        (lambda q: q.filter(usernme="x"), "field"),
        (lambda q: q.filter(username__startwith="x"), "lookup operator"),
        (lambda q: q.filter(nope__in=[1]), "field"),
        (lambda q: q.order_by("-nope"), "order_by field"),
        (lambda q: q.order_by("username; DROP TABLE users"), "order_by field"),
        (lambda q: q.or_(emial="x"), "field"),
    ],
)
async def test_unknown_names_raise_listing_valid_ones(users: UserDao, call, kind) -> None:
    with pytest.raises(UnknownFieldError) as info:
        call(users.query())
    assert info.value.kind == kind and info.value.valid


async def test_unknown_field_in_update_values(seeded: UserDao) -> None:
    with pytest.raises(UnknownFieldError):
        await seeded.query().filter(username="bob").update(nope=1)


@pytest.mark.parametrize(
    "hostile",
    ["x' OR '1'='1", "'; DROP TABLE users; --", 'a"b', "ünïcødé ✓ 漢字", "%", "_", "\\"],
)
async def test_hostile_values_never_change_the_sql(users: UserDao, hostile: str) -> None:
    await users.create(username="plain", email="plain@x.io")
    made = await users.create(username=hostile, email="h@x.io")
    assert (await users.query().filter(username=hostile).one()).id == made.id
    assert await users.query().filter(username__contains=hostile).count() == 1
    assert await users.query().filter(email=hostile).count() == 0
    assert await users.count() == 2


async def test_nul_byte_in_a_filter_is_refused_alike_everywhere(users: UserDao, backend) -> None:
    await users.create(username="plain", email="plain@x.io")
    with pytest.raises(InvalidValueError, match="NUL") as info:  # checked before any SQL
        await users.query().filter(username="a\x00' OR 1=1 --").all()
    assert "OR 1=1" not in str(info.value)  # the value is never echoed
    if backend.name.startswith("postgresql"):  # text cannot hold NUL: the server's refusal, typed
        with pytest.raises(InvalidValueError, match="22021") as info:
            await users.create(username="a\x00' OR 1=1 --", email="nul@x.io")
        assert "OR 1=1" not in str(info.value)
    assert await users.count() == 1


async def test_large_in_list_is_split(users: UserDao) -> None:
    await users.create_many({"username": f"u{i}", "email": f"u{i}@x.io"} for i in range(30))
    ids = [u.id for u in await users.query().all()]
    wanted = ids[:10] + list(range(10**6, 10**6 + 2500))
    assert await users.query().filter(id__in=wanted).count() == 10
    assert len(await users.get_many(wanted)) == 10


async def test_for_update_and_options(seeded: UserDao) -> None:
    async with seeded.transaction():
        locked = await seeded.query().filter(username="bob").for_update().one()
        assert locked.username == "bob"
        nowait = await seeded.query().filter(username="carol").for_update(skip_locked=True).all()
        assert len(nowait) == 1
    slim = await seeded.query().options(load_only(User.id, User.username)).filter(username="bob").one()
    assert slim.username == "bob"


async def test_where_accepts_sql_functions(seeded: UserDao, engine) -> None:
    query = seeded.query().where(func.upper(User.username) == "EVE")
    assert await names(query) == ["eve"]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM users"))).scalar_one() == 5
