"""The issue's mixed DAO load (get, page, count, update, keyset), shared by the PgBouncer
tests; also runnable as one client process of the multi-process test::

    python -m tests.pkg.database.pgbouncer_load URL POOL TASKS CALLS FIRST_OWN_ROW

A process opens POOL connections, prints ``ready``, waits for a line on stdin, runs the
load and prints the number of failed calls.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from internal.dao.user import UserDao
from internal.models.user import User
from pkg.database import new_async_engine, new_async_session_maker

SECRET = "pgbouncer-test"


async def seed(engine: AsyncEngine, rows: int) -> list[int]:
    """A fresh users table with ``rows`` rows; their ids."""
    async with engine.begin() as conn:
        await conn.run_sync(User.metadata.drop_all)
        await conn.run_sync(User.metadata.create_all)
    users = UserDao(session_provider=new_async_session_maker(engine), cursor_secret=SECRET)
    await users.create_many(
        {"username": f"u{i}", "email": f"u{i}@x.io", "is_active": i % 3 > 0} for i in range(rows)
    )
    return [u.id for u in await users.query().order_by("id").all()]


async def mixed_calls(users: UserDao, own_id: int, ids: list[int], calls: int) -> list[BaseException]:
    """``calls`` DAO calls cycling get / page / count / update (own row) / keyset."""
    failures: list[BaseException] = []
    cursor: str | None = None
    for i in range(calls):
        try:
            match i % 5:
                case 0:
                    await users.get(ids[i % len(ids)])
                case 1:
                    await users.query().filter(is_active=True).order_by("id").page(1 + i % 3, 10)
                case 2:
                    await users.count(is_active=True)
                case 3:
                    await users.update_by_id(own_id, username=f"t{i}")
                case _:
                    cursor = (await users.query().order_by("id").keyset(10, cursor)).next_cursor
        except Exception as exc:  # counted, not raised: the test reports what failed
            failures.append(exc)
    return failures


async def run_load(
    engine: AsyncEngine, ids: list[int], tasks: int, calls: int, *, first_own: int = 0
) -> list[BaseException]:
    """``tasks`` concurrent tasks of :func:`mixed_calls` on ``engine``; every failure.

    Task ``t`` updates row ``ids[first_own + t]`` only (no version conflicts between tasks).
    """
    users = UserDao(session_provider=new_async_session_maker(engine), cursor_secret=SECRET)
    own = [ids[(first_own + t) % len(ids)] for t in range(tasks)]
    results = await asyncio.gather(*(mixed_calls(users, own[t], ids, calls) for t in range(tasks)))
    return [exc for failures in results for exc in failures]


def describe(failures: list[BaseException]) -> str:
    """Failures by type and first line, most common first."""
    counts = Counter(
        f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}" for e in failures
    )
    return "; ".join(f"{n} x {what}" for what, n in counts.most_common(5))


async def _client(url: str, pool: int, tasks: int, calls: int, first_own: int) -> int:
    engine = new_async_engine(
        url, pool_size=pool, max_overflow=0, pgbouncer="transaction", slow_query_threshold=None
    )
    try:
        held = [await engine.connect() for _ in range(pool)]  # POOL client connections open
        for conn in held:
            await conn.close()
        print("ready", flush=True)
        sys.stdin.readline()  # the test says go once every process holds its connections
        users = UserDao(session_provider=new_async_session_maker(engine), cursor_secret=SECRET)
        ids = [u.id for u in await users.query().order_by("id").all()]
        failures = await run_load(engine, ids, tasks, calls, first_own=first_own)
        if failures:
            print(describe(failures), file=sys.stderr)
        return len(failures)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    url, pool, tasks, calls, first_own = sys.argv[1:6]
    print(asyncio.run(_client(url, int(pool), int(tasks), int(calls), int(first_own))), flush=True)
