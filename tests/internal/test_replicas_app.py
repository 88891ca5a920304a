"""The app on a real standby: settings (DB_READ_URLS ...), GET requests read a replica,
X-Consistency-Token / X-Read-After carry read-your-writes across requests, /health/db
shows each engine, a replica down at start with DB_READ_REQUIRED fails init."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from internal.app import create_app
from internal.config.load_config import Settings, load_settings
from internal.infra import database as infra
from pkg.database.errors import ConfigurationError, DatabaseNotInitializedError, ReplicaUnavailableError
from tests.conftest import Backend
from tests.faults.helpers import wait_until
from tests.pkg.database.routing.conftest import wait_replayed

pytestmark = pytest.mark.replica


def _settings(pg: Backend, **extra: str) -> Settings:
    environ = {"DB_URL": pg.url.render_as_string(hide_password=False), "DB_SLOW_QUERY_THRESHOLD": "5"}
    return load_settings("test", environ={**environ, **extra})


def test_read_urls_settings_parse_weights_names_and_mask_passwords() -> None:
    s = load_settings(
        "test",
        environ={
            "DB_URL": "postgresql://app:s3cret@db/app",
            "DB_READ_URL": "postgresql://app:s3cret@r0/app",
            "DB_READ_URLS": "east=postgresql://app:s3cret@r1/app*3, postgresql://app:s3cret@r2/app",
            "DB_REPLICA_MAX_LAG": "2.5",
        },
    )
    assert [(r.name, r.weight) for r in s.read_replicas] == [(None, 1.0), ("east", 3.0), (None, 1.0)]
    assert {str(r.url).split("://")[0] for r in s.read_replicas} == {"postgresql+asyncpg"}
    assert s.routing_options()["max_lag"] == 2.5
    assert "s3cret" not in repr(s)
    for bad in ("postgresql://a@r/x*0", "postgresql://a@r/x*-1", "bad name=postgresql://a@r/x", "nope"):
        with pytest.raises(ConfigurationError) as caught:
            load_settings("test", environ={"DB_URL": "sqlite+aiosqlite://", "DB_READ_URLS": bad})
        assert caught.value.key == "DB_READ_URLS"


@pytest.fixture
async def routed_app(
    pg: Backend, replica_backend: Backend, users_table: None
) -> AsyncIterator[httpx.AsyncClient]:
    infra.reset_async_db()
    settings = _settings(
        pg,
        DB_READ_URLS=f"standby={replica_backend.url.render_as_string(hide_password=False)}",
        DB_REPLICA_MAX_LAG="3600",
    )
    db = await infra.init_async_db(settings, handle_signals=False)
    assert db.router is not None
    await wait_replayed(replica_backend.url, await db.router.position() or 0)  # users table there
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client
    finally:
        await infra.close_async_db()


async def test_requests_read_the_replica_and_carry_their_writes(
    routed_app: httpx.AsyncClient, replica_backend: Backend
) -> None:
    admin = create_async_engine(replica_backend.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as standby:
            await standby.execute(text("SELECT pg_wal_replay_pause()"))

            async def paused() -> bool:
                return await standby.scalar(text("SELECT pg_get_wal_replay_pause_state()")) == "paused"

            await wait_until(paused, "replay paused")
            try:
                tag = uuid.uuid4().hex[:8]
                created = await routed_app.post("/users", json={"username": tag, "email": f"{tag}@ex.com"})
                assert created.status_code == 201, created.text
                token = created.headers["x-consistency-token"]
                user_id = created.json()["id"]
                assert (await routed_app.get(f"/users/{user_id}")).status_code == 404  # the replica
                mine = await routed_app.get(f"/users/{user_id}", headers={"X-Read-After": token})
                assert mine.status_code == 200 and mine.json()["username"] == tag
                bad = await routed_app.get(f"/users/{user_id}", headers={"X-Read-After": "garbage"})
                assert bad.status_code == 422
                health = (await routed_app.get("/health/db")).json()
                assert set(health["pool"]["engines"]) == {"primary", "standby"}
                assert health["pool"]["engines"]["standby"]["state"] == "up"
                assert health["pool"]["engines"]["standby"]["lag_seconds"] is not None
            finally:
                await standby.execute(text("SELECT pg_wal_replay_resume()"))
    finally:
        await admin.dispose()


async def test_a_replica_down_at_start_fails_init_only_when_required(pg: Backend) -> None:
    infra.reset_async_db()
    down = "postgresql://postgres@127.0.0.1:1/nowhere"
    with pytest.raises(ReplicaUnavailableError):
        await infra.init_async_db(
            _settings(pg, DB_READ_URLS=down, DB_READ_REQUIRED="true"), handle_signals=False
        )
    with pytest.raises(DatabaseNotInitializedError):  # not initialised: the failed init left nothing behind
        infra.get_database()
    db = await infra.init_async_db(_settings(pg, DB_READ_URLS=down), handle_signals=False)
    try:
        async with infra.get_read_session() as session:  # degraded: the primary
            assert await session.scalar(text("SELECT pg_is_in_recovery()")) is False
    finally:
        await infra.close_async_db()
    assert db.router is not None
