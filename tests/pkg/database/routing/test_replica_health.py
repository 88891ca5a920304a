"""Replica health on the real standby: lag past ``max_lag`` (``recovery_min_apply_delay``)
moves reads to the primary within one probe interval and back after; a stopped standby
fails no read and takes traffic again once restarted (slow: it stops the STANDBY cluster,
never the primary)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from pkg.database import Database
from pkg.database.routing import State, consistency_scope, route_of
from tests.faults.helpers import wait_until
from tests.pkg.database.routing.conftest import MakeDb, NoteDao

pytestmark = pytest.mark.replica

PROBE = 0.5  # probe interval of these tests, seconds
STANDBY = ("15", "standby")  # the cluster scripts/services.sh builds


async def _route(db: Database) -> str | None:
    """Where a fresh context's read session goes now."""
    with consistency_scope():
        async with db.read_session() as session:
            return route_of(session)


async def _set_delay(standby: AsyncConnection, delay: str | None) -> None:
    sql = (
        "ALTER SYSTEM RESET recovery_min_apply_delay"
        if delay is None
        else (f"ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'")
    )
    await standby.execute(text(sql))
    await standby.execute(text("SELECT pg_reload_conf()"))
    want = "0" if delay is None else delay

    async def applied() -> bool:
        return bool(await standby.scalar(text("SHOW recovery_min_apply_delay")) == want)

    await wait_until(applied, f"recovery_min_apply_delay = {want}")


async def test_a_lagging_replica_is_skipped_within_one_probe_and_returns(
    make_db: MakeDb, standby: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    db = await make_db(max_lag=1.0, probe_interval=PROBE)
    notes = NoteDao(db.session)
    assert await _route(db) == "replica-0"
    await _set_delay(standby, "1h")
    try:
        with caplog.at_level(logging.WARNING, logger="pkg.database.routing"):
            await notes.create(body="delayed")  # a commit the standby now holds back
            written = time.monotonic()

            async def on_primary() -> bool:
                return await _route(db) == "primary"

            await wait_until(on_primary, "reads to move to the primary", 30)
            moved = time.monotonic() - written
            # lag passes max_lag 1 s after the commit; the next probe comes within PROBE
            assert moved < 1.0 + 2 * PROBE + 0.5, moved
            assert db.pool_status()["engines"]["replica-0"]["state"] == "lagging"
    finally:
        await _set_delay(standby, None)

    async def back() -> bool:
        return await _route(db) == "replica-0"

    await wait_until(back, "reads to return to the replica", 30)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lags" in m for m in messages) == 1  # one WARNING for the change, not per probe


def _cluster(action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *STANDBY, action], check=True)


def _ensure_started() -> None:
    """Leave the standby running whatever happened (status 3: stopped)."""
    status = subprocess.run(["pg_ctlcluster", *STANDBY, "status"], capture_output=True, check=False)
    if status.returncode != 0:
        _cluster("start")


@pytest.mark.slow
async def test_a_stopped_standby_fails_no_read_and_takes_traffic_again(
    make_db: MakeDb, caplog: pytest.LogCaptureFixture
) -> None:
    db = await make_db(probe_interval=PROBE)
    notes = NoteDao(db.session)
    note = await notes.create(body="kept")
    await make_db.caught_up(db)  # type: ignore[attr-defined]
    await db.check_replicas()
    failed, served, stopped = 0, [], asyncio.Event()

    async def reader() -> None:  # reads before, during and after the stop: at least 100
        nonlocal failed
        while not (stopped.is_set() and len(served) >= 100):
            with consistency_scope():
                try:
                    assert (await notes.get(note.id)) is not None
                except Exception:
                    failed += 1
            served.append(1)
            await asyncio.sleep(0)

    try:
        with caplog.at_level(logging.WARNING, logger="pkg.database.routing"):
            task = asyncio.create_task(reader())
            await wait_until(lambda: _at_least(served, 10), "the first reads")
            during = len(served)
            await asyncio.to_thread(_cluster, "stop")
            assert len(served) > during  # reads ran while the standby shut down
            stopped.set()
            await task
            assert failed == 0 and len(served) >= 100
            assert db.replicas[0].health.state is State.DOWN
            await asyncio.to_thread(_cluster, "start")

            async def back() -> bool:
                return await _route(db) == "replica-0"

            await wait_until(back, "traffic to return to the restarted standby", 60)
        messages = [r.getMessage() for r in caplog.records]
        assert sum(" is down " in m for m in messages) == 1
        assert sum("back in service" in m for m in messages) == 1
    finally:
        await asyncio.to_thread(_ensure_started)


async def _at_least(items: list[int], n: int) -> bool:
    return len(items) >= n
