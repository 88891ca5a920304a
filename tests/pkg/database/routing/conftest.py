"""Fixtures of the read-replica tests: this run's database on the primary and on the
streaming standby (127.0.0.1:5433, built by ``scripts/services.sh``), a routed
:class:`Database` over both, and admin access to the standby (pause replay, settings)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pkg.database import BaseDao, Database, query_stats
from tests.conftest import Backend, resolve_backend
from tests.faults.helpers import wait_until

REPLAY_WAIT = 30.0  # seconds the standby may take to replay a commit in these tests


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "routing_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(100))


class NoteDao(BaseDao[Note]):
    model_cls = Note


@pytest.fixture
def primary_backend(server_backends: dict[str, Backend | str], tmp_path: Path) -> Backend:
    return resolve_backend("postgresql", server_backends, tmp_path)


@pytest.fixture
async def standby(replica_backend: Backend) -> AsyncIterator[AsyncConnection]:
    """An AUTOCOMMIT connection to the standby's ``postgres`` database (admin statements)."""
    engine = create_async_engine(replica_backend.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def wait_replayed(replica_url: URL, position: int) -> None:
    """Poll the standby until it has replayed ``position`` (bounded by REPLAY_WAIT)."""
    engine = create_async_engine(replica_url.set(database="postgres"), pool_size=1)
    query = text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), CAST(:pos AS pg_lsn)) >= 0")
    lsn = f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
    try:
        async with engine.connect() as conn:

            async def replayed() -> bool:
                return bool(await conn.scalar(query, {"pos": position}))

            await wait_until(replayed, f"the standby to replay {lsn}", REPLAY_WAIT)
    finally:
        await engine.dispose()


MakeDb = Callable[..., Any]


@pytest.fixture
async def make_db(primary_backend: Backend, replica_backend: Backend) -> AsyncIterator[MakeDb]:
    """``await make_db(**routing)``: a routed Database over this run's database, the
    ``routing_notes`` table created on the primary and already replayed on the standby."""
    made: list[Database] = []

    async def make(read_urls: list[Any] | None = None, **routing: Any) -> Database:
        routing.setdefault("max_lag", 3600.0)
        db = Database(
            primary_backend.url,
            read_urls=read_urls if read_urls is not None else [replica_backend.url],
            routing=routing,
            slow_query_threshold=None,
        )
        made.append(db)
        if len(made) == 1:
            async with db.engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.run_sync(Base.metadata.create_all)
            await caught_up(db)
        return db

    async def caught_up(db: Database) -> None:
        assert db.router is not None
        position = await db.router.position()
        assert position is not None
        await wait_replayed(replica_backend.url, position)

    make.caught_up = caught_up  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for db in made:
            await db.close()


def statements(engine: AsyncEngine) -> int:
    """Statements this engine has run so far (to tell which engine served a read)."""
    return query_stats(engine).statements
