"""Whole-transaction retries on real conflicts: a SERIALIZABLE conflict on PostgreSQL and a
deadlock (MariaDB, PostgreSQL) both finish with the loser's callback run twice; a duplicate
key runs once; a lost connection is retried before COMMIT and never during it.

The two transactions of a conflict are made to overlap with ``asyncio.Event``: each waits
until the other holds its snapshot / first row lock before going on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from internal.dao import UserDao
from internal.models import User
from pkg.database import execute_transaction, new_async_session_maker, retry_transaction, transaction
from pkg.database.errors import (
    CommitOutcomeUnknownError,
    ConfigurationError,
    DuplicateKeyError,
    QueryError,
)
from pkg.database.retry import retry_delay
from tests.conftest import Backend

META = MetaData()
counters = Table("retry_counters", META, Column("id", Integer, primary_key=True), Column("n", Integer))
FAST = {"retries": 3, "backoff": 0.001}


async def _seed(engine: AsyncEngine, *ids: int) -> None:
    """A fresh ``retry_counters`` table (in this run's own database) holding rows ``ids``."""
    async with engine.begin() as conn:
        await conn.run_sync(META.drop_all)
        await conn.run_sync(META.create_all)
        if ids:
            await conn.execute(insert(counters), [{"id": i, "n": 0} for i in ids])


async def _values(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(counters.c.n).order_by(counters.c.id))).scalars())


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_serializable_transactions_on_one_row_both_finish(backend: Backend) -> None:
    engine = backend.engine(isolation_level="SERIALIZABLE")
    try:
        await _seed(engine, 1)
        maker = new_async_session_maker(engine)
        have_read = {"a": asyncio.Event(), "b": asyncio.Event()}
        runs = {"a": 0, "b": 0}

        async def bump(session: AsyncSession, name: str, other: str) -> None:
            runs[name] += 1
            n = (await session.execute(select(counters.c.n).where(counters.c.id == 1))).scalar_one()
            have_read[name].set()
            await have_read[other].wait()  # both snapshots taken: the second UPDATE must fail
            await session.execute(update(counters).where(counters.c.id == 1).values(n=n + 1))

        decorated = retry_transaction(maker, **FAST)(bump)  # the decorator form for one side
        await asyncio.gather(
            execute_transaction(maker, lambda s: bump(s, "a", "b"), **FAST), decorated("b", "a")
        )
        assert sorted(runs.values()) == [1, 2]
        assert await _values(engine) == [2]  # no update lost
    finally:
        await engine.dispose()


async def test_a_deadlock_is_retried_and_both_finish(server_backend: Backend) -> None:
    engine = server_backend.engine()
    try:
        await _seed(engine, 1, 2)
        maker = new_async_session_maker(engine)
        locked = {"a": asyncio.Event(), "b": asyncio.Event()}
        runs = {"a": 0, "b": 0}

        def cross(
            name: str, other: str, first: int, second: int
        ) -> Callable[[AsyncSession], Awaitable[None]]:
            async def work(session: AsyncSession) -> None:
                runs[name] += 1
                await session.execute(
                    update(counters).where(counters.c.id == first).values(n=counters.c.n + 1)
                )
                locked[name].set()
                await locked[other].wait()  # each holds one row and wants the other's
                await session.execute(
                    update(counters).where(counters.c.id == second).values(n=counters.c.n + 1)
                )

            return work

        await asyncio.gather(
            execute_transaction(maker, cross("a", "b", 1, 2), **FAST),
            execute_transaction(maker, cross("b", "a", 2, 1), **FAST),
        )
        assert sorted(runs.values()) == [1, 2]
        assert await _values(engine) == [2, 2]
    finally:
        await engine.dispose()


@pytest.fixture
async def users(create_tables, engine: AsyncEngine) -> UserDao:
    await create_tables(User.metadata)
    return UserDao(session_provider=new_async_session_maker(engine))


async def test_a_duplicate_key_runs_once(users: UserDao) -> None:
    await users.create(username="a", email="a@x.io")
    runs = 0

    async def duplicate(session: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        await users.create(username="b", email="a@x.io", session=session)

    with pytest.raises(DuplicateKeyError):
        await users.execute_transaction(duplicate, retries=3)
    assert runs == 1


async def test_retries_inside_an_open_transaction_are_refused(users: UserDao) -> None:
    maker = users.session_provider
    runs = 0

    async def work(session: AsyncSession) -> int:
        nonlocal runs
        runs += 1
        return runs

    async with transaction(maker):
        with pytest.raises(QueryError, match="inside an open transaction"):
            await execute_transaction(maker, work, retries=2)
        assert await execute_transaction(maker, work) == 1  # retries=0: once, as a SAVEPOINT
    with pytest.raises(ConfigurationError, match="retries"):
        await execute_transaction(maker, work, retries=-1)


def test_backoff_is_exponential_jittered_and_capped() -> None:
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0), (30, 1.0)):
        delays = [retry_delay(attempt, 0.1, 1.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


# -- lost connections --------------------------------------------------------------------

_OWN_ID = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}
_KILL = {"postgresql": "SELECT pg_terminate_backend(:id)", "mysql": "KILL :id"}
_ALIVE = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE pid = :id",
    "mysql": "SELECT count(*) FROM information_schema.processlist WHERE id = :id",
}


async def _kill_own_connection(session: AsyncSession, admin: AsyncEngine) -> None:
    """End this session's server connection from another one; return once the server shows it gone."""
    dialect = admin.dialect.name
    own = (await session.execute(text(_OWN_ID[dialect]))).scalar_one()
    async with admin.connect() as conn:
        await conn.execute(text(_KILL[dialect]), {"id": own})
        for _ in range(500):  # polling the server, bounded (5 s)
            if not (await conn.execute(text(_ALIVE[dialect]), {"id": own})).scalar_one():
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the killed connection is still there")


@pytest.fixture
async def killable(server_backend: Backend) -> Any:
    engine = server_backend.engine()
    admin = server_backend.engine()
    await _seed(engine)
    try:
        yield new_async_session_maker(engine), admin, engine
    finally:
        await admin.dispose()
        await engine.dispose()


async def test_a_connection_lost_before_commit_is_retried(
    killable: tuple[async_sessionmaker[AsyncSession], AsyncEngine, AsyncEngine],
) -> None:
    maker, admin, engine = killable
    runs = 0

    async def work(session: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await _kill_own_connection(session, admin)
        await session.execute(insert(counters).values(id=runs, n=runs))

    await execute_transaction(maker, work, **FAST)
    assert runs == 2 and await _values(engine) == [2]


async def test_a_connection_lost_during_commit_is_never_retried(
    killable: tuple[async_sessionmaker[AsyncSession], AsyncEngine, AsyncEngine],
) -> None:
    maker, admin, _ = killable
    runs = 0

    async def work(session: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        await session.execute(insert(counters).values(id=1, n=1))
        await _kill_own_connection(session, admin)  # the next thing sent is the COMMIT

    with pytest.raises(CommitOutcomeUnknownError) as caught:
        await execute_transaction(maker, work, **FAST)
    assert runs == 1 and caught.value.__cause__ is not None
