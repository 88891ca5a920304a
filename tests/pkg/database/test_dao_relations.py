"""Relations through the DAO: named eager loads (no N+1), DAO default loads, Django-style
relationship filters (EXISTS), and a typed error instead of a lazy load.

"3 statements" means: the SELECT of the users plus one selectin SELECT per loaded level
(orders, then their items), counted at the driver (``before_cursor_execute``); behind
PgBouncer the read's BEGIN / ROLLBACK are protocol messages, not statements. ``page()``
adds its COUNT (4).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from internal.dao import OrderDao, UserDao
from internal.models import Order, OrderItem, User
from pkg.database.errors import UnknownFieldError, UnloadedRelationError
from tests.pkg.database.sql_capture import captured_statements


@pytest.fixture
async def shop(users: UserDao, maker: async_sessionmaker[AsyncSession]) -> UserDao:
    """60 users (ids in creation order), each with 2 orders of 2 items; user i's orders total
    ``i`` and ``i + 100``."""
    async with maker() as session:
        for i in range(60):
            user = User(username=f"u{i:02}", email=f"u{i}@x.io")
            user.orders = [
                Order(
                    total=Decimal(total), items=[OrderItem(sku=f"s{i}-{n}", price=Decimal(1)) for n in (1, 2)]
                )
                for total in (i, i + 100)
            ]
            session.add(user)
            await session.flush()  # ids follow i on every backend
        await session.commit()
    return users


async def test_fifty_users_with_two_loaded_relations_cost_three_statements(
    engine: AsyncEngine, shop: UserDao
) -> None:
    query = shop.query().load("orders", "orders.items").order_by("id")
    with captured_statements(engine) as seen:
        found = await query.limit(50).all()
        items = [item.sku for user in found for order in user.orders for item in order.items]
    assert len(seen) == 3, seen
    assert len(found) == 50 and len(items) == 200 and items[:2] == ["s0-1", "s0-2"]
    with captured_statements(engine) as seen:
        page = await query.page(1, 50)
        assert sum(len(o.items) for u in page.items for o in u.orders) == 200
    assert len(seen) == 4 and page.total == 60  # COUNT + the same 3


async def test_joined_loading_is_one_statement_with_each_user_once(
    engine: AsyncEngine, shop: UserDao
) -> None:
    with captured_statements(engine) as seen:
        found = await shop.query().load("orders", strategy="joined").order_by("id").limit(5).all()
    assert len(seen) == 1 and [u.username for u in found] == ["u00", "u01", "u02", "u03", "u04"]
    assert [len(u.orders) for u in found] == [2] * 5


async def test_an_unloaded_relation_raises_a_typed_error_naming_load(shop: UserDao) -> None:
    user = await shop.query().order_by("id").first()
    assert user is not None
    with pytest.raises(UnloadedRelationError, match=r"User\.orders was not loaded: add \.load\('orders'\)"):
        _ = user.orders
    loaded = await shop.query().load("orders").order_by("id").first()
    assert loaded is not None and len(loaded.orders) == 2
    with pytest.raises(UnloadedRelationError) as caught:
        _ = loaded.orders[0].items  # one level deeper was not asked for
    assert (caught.value.model, caught.value.attribute) == ("Order", "items")
    got = await shop.get(user.id)
    assert got is not None
    with pytest.raises(UnloadedRelationError, match="orders"):
        _ = got.orders


async def test_inside_a_transaction_an_unloaded_relation_is_the_typed_error_too(shop: UserDao) -> None:
    async with shop.transaction():
        user = await shop.query().order_by("id").first()
        assert user is not None
        with pytest.raises(UnloadedRelationError):  # not MissingGreenlet
            _ = user.orders


async def test_dao_default_loads_apply_to_query_and_get(
    engine: AsyncEngine, shop: UserDao, maker: async_sessionmaker[AsyncSession]
) -> None:
    orders = OrderDao(session_provider=maker)  # default_loads = ("items",)
    with captured_statements(engine) as seen:
        first = await orders.query().order_by("id").limit(10).all()
    assert len(seen) == 2 and all(len(o.items) == 2 for o in first)
    got = await orders.get(first[0].id)
    assert got is not None and [i.sku for i in got.items] == ["s0-1", "s0-2"]

    class BadDao(OrderDao):
        default_loads = ("itemz",)

    with pytest.raises(UnknownFieldError, match="valid relations: items, user"):
        BadDao(session_provider=maker)


async def test_relationship_filters_are_exists_subqueries(shop: UserDao) -> None:
    rich = shop.query().filter(orders__total__gte=150).order_by("id")
    assert "EXISTS" in str(rich.statement()).upper()
    assert [u.username for u in await rich.all()] == [f"u{i}" for i in range(50, 60)]
    assert await shop.query().filter(orders__items__sku="s7-2").count() == 1
    assert await shop.query().filter(orders__isnull=True).count() == 0
    assert await shop.query().or_(orders__total=3, username="u05").count() == 2
    lonely = await shop.create(username="solo", email="solo@x.io")
    assert [u.id for u in await shop.query().filter(orders__isnull=True).all()] == [lonely.id]


async def test_unknown_relations_and_strategies_list_the_valid_names(shop: UserDao) -> None:
    with pytest.raises(UnknownFieldError, match=r"orders__<field>"):
        shop.query().filter(ordrs__total__gt=1)
    with pytest.raises(UnknownFieldError, match=r"unknown field 'totl'.*total"):
        shop.query().filter(orders__totl__gt=1)
    with pytest.raises(UnknownFieldError, match="valid relations: orders"):
        shop.query().load("order")
    with pytest.raises(UnknownFieldError, match="valid relations: items, user"):
        shop.query().load("orders.itemz")
    with pytest.raises(UnknownFieldError, match=r"unknown loader .lazy.; valid loaders: joined, selectin"):
        shop.query().load("orders", strategy="lazy")
