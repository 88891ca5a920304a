"""Read replicas on a real streaming standby: which engine serves what, read-only read
sessions, read-your-writes (replay paused on the standby), weights, and start-up."""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pkg.database import Database, transaction
from pkg.database.errors import ComputationError, ReadOnlySessionError, ReplicaUnavailableError
from pkg.database.routing import (
    ReplicaSpec,
    State,
    consistency_scope,
    consistency_token,
    read_after,
    route_of,
)
from tests.conftest import Backend
from tests.faults.helpers import wait_until
from tests.pkg.database.routing.conftest import MakeDb, Note, NoteDao, statements, wait_replayed

pytestmark = pytest.mark.replica

DOWN_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1


async def test_dao_and_builder_reads_outside_a_transaction_use_the_replica(make_db: MakeDb) -> None:
    db = await make_db()
    notes = NoteDao(db.session)
    note = await notes.create(body="seen")
    await make_db.caught_up(db)  # type: ignore[attr-defined]
    await db.check_replicas()  # probed now: the next probe is due in 5 s
    with consistency_scope():  # a fresh context: no own writes to wait for
        primary, replica = statements(db.engine), statements(db.replicas[0].engine)
        assert (await notes.get(note.id)) is not None
        assert [n.body for n in await notes.query().all()] == ["seen"]
        assert await notes.query().count() == 1
        assert await notes.query().exists()
        assert (await notes.query().dicts())[0]["body"] == "seen"
        assert (await notes.query().page(1, 10)).total == 1
        assert statements(db.engine) == primary  # nothing on the primary
        assert statements(db.replicas[0].engine) - replica >= 6


async def test_writes_transactions_joins_and_for_update_run_on_the_primary(make_db: MakeDb) -> None:
    db = await make_db()
    notes = NoteDao(db.session)
    with consistency_scope():
        replica = statements(db.replicas[0].engine)
        note = await notes.create(body="w")
        async with transaction(db.session) as session:
            assert (await notes.get(note.id)) is not None  # joins the open transaction
            assert await notes.query().count(session=session) == 1
        async with db.session() as session:
            assert (await notes.get(note.id, session=session)) is not None
        assert len(await notes.query().for_update().all()) == 1
        await notes.update_by_id(note.id, body="w2")
        assert statements(db.replicas[0].engine) == replica  # the replica saw none of it


async def test_a_write_in_a_read_session_is_a_typed_error(make_db: MakeDb) -> None:
    db = await make_db()
    with consistency_scope():
        async with db.read_session() as session:
            assert route_of(session) == "replica-0"
            with pytest.raises(ReadOnlySessionError):
                await session.execute(insert(Note).values(body="no"))
            session.add(Note(body="no"))
            with pytest.raises(ReadOnlySessionError):
                await session.flush()
        async with db.read_session() as session:  # raw SQL reaches the standby: SQLSTATE 25006
            with pytest.raises(ReadOnlySessionError) as caught:
                await session.execute(text("INSERT INTO routing_notes (body) VALUES ('no')"))
            assert caught.value.sqlstate == "25006"


async def test_a_read_session_keeps_one_replica_for_its_whole_life(make_db: MakeDb) -> None:
    db = await make_db()
    with consistency_scope():
        async with db.read_session() as session:
            seen = {
                tuple((await session.execute(text("SELECT pg_is_in_recovery(), pg_backend_pid()"))).one())
                for _ in range(20)
            }
        assert len(seen) == 1 and next(iter(seen))[0] is True  # one standby backend, 20 statements


async def _paused(standby: AsyncConnection, paused: bool) -> None:
    """Pause or resume replay on the standby and wait until the standby says so."""
    await standby.execute(text("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()"))
    want = "paused" if paused else "not paused"

    async def reached() -> bool:
        return bool(await standby.scalar(text("SELECT pg_get_wal_replay_pause_state()")) == want)

    await wait_until(reached, f"standby replay {want}", 30)


async def test_read_your_writes_while_replay_is_paused(make_db: MakeDb, standby: AsyncConnection) -> None:
    db = await make_db()
    notes = NoteDao(db.session)
    replica = db.replicas[0].engine
    await _paused(standby, True)
    try:
        with consistency_scope():  # the writer's context (a request, a task)
            note = await notes.create(body="mine")
            before = statements(db.engine)
            assert (await notes.get(note.id)) is not None  # sees its own write: the primary
            assert statements(db.engine) > before
            token = await consistency_token()
        with consistency_scope():  # another context: the replica, which has not replayed it
            before = statements(replica)
            assert (await notes.get(note.id)) is None
            assert statements(replica) > before
        with read_after(token):  # the token carried to another request
            assert (await notes.get(note.id)) is not None
        await _paused(standby, False)
        assert db.router is not None
        position = int(str(token).rpartition("lsn:")[2], 16)
        await wait_replayed(db.replicas[0].engine.url, position)
        with read_after(token):  # replayed now: back on the replica
            before = statements(replica), statements(db.engine)
            assert (await notes.get(note.id)) is not None
            assert statements(replica) > before[0] and statements(db.engine) == before[1]
    finally:
        await _paused(standby, False)


async def test_weights_are_honoured(make_db: MakeDb, replica_backend: Backend) -> None:
    url = replica_backend.url
    db = await make_db([ReplicaSpec(url, 3, "heavy"), ReplicaSpec(url, 1, "light")])
    counts: Counter[str | None] = Counter()
    with consistency_scope():
        for _ in range(4000):
            async with db.read_session() as session:
                counts[route_of(session)] += 1
        async with db.read_session() as session:  # and they really read the standby
            assert await session.scalar(text("SELECT pg_is_in_recovery()")) is True
    assert counts["heavy"] + counts["light"] == 4000
    assert abs(counts["heavy"] / 4000 - 0.75) < 0.03


async def test_an_unreachable_replica_degrades_to_the_primary(
    make_db: MakeDb, caplog: pytest.LogCaptureFixture
) -> None:
    db = await make_db([DOWN_URL])
    notes = NoteDao(db.session)
    with caplog.at_level(logging.WARNING, logger="pkg.database.routing"):
        await db.check_replicas()
    assert [r.getMessage() for r in caplog.records] == [
        "replica replica-0 is down (ConnectionLostError): its reads go to other replicas or the primary"
    ]
    with consistency_scope():
        assert await notes.query().count() == 0
    with pytest.raises(ReplicaUnavailableError):
        await db.check_replicas(required=True)
    assert db.pool_status()["engines"]["replica-0"]["state"] == "down"


async def test_a_connection_failure_retries_once_on_the_primary_a_query_error_never(make_db: MakeDb) -> None:
    db = await make_db([DOWN_URL], probe_interval=3600)
    assert db.router is not None
    db.router.replicas[0].health.state = State.UP  # as if probed up a moment ago, then it went down
    db.router._probed_at = time.monotonic()
    notes = NoteDao(db.session)
    with consistency_scope():
        assert await notes.query().count() == 0  # refused on the replica, served by the primary
        assert db.router is not None and db.router.fallbacks == 1
    good = await make_db()
    await good.check_replicas()
    with consistency_scope():
        before = statements(good.engine)
        async with good.read_session() as session:
            with pytest.raises(ComputationError):
                await session.execute(select(text("1/0")))
        assert statements(good.engine) == before


async def test_no_replica_configured_changes_nothing(primary_backend: Backend) -> None:
    db = Database(primary_backend.url, slow_query_threshold=None)
    try:
        assert db.router is None
        async with db.read_session() as session:
            assert route_of(session) is None
            assert await session.scalar(text("SELECT pg_is_in_recovery()")) is False
        assert "engines" not in db.pool_status()
    finally:
        await db.close()


async def test_pool_status_shows_every_engine_with_state_and_lag(make_db: MakeDb) -> None:
    db = await make_db()
    await db.check_replicas()
    engines = db.pool_status()["engines"]
    assert set(engines) == {"primary", "replica-0"}
    assert engines["replica-0"]["state"] == "up"
    assert engines["replica-0"]["lag_bytes"] is not None and engines["replica-0"]["lag_seconds"] is not None
