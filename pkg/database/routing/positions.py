"""What a server can tell about replication, per dialect: the one place that differs.

PostgreSQL has WAL positions (LSNs): the primary's ``pg_current_wal_lsn()`` after a commit,
a standby's ``pg_last_wal_replay_lsn()``; a standby that has replayed a position shows
every commit before it. Other backends give no position the kit reads: their probe is a
round trip only (lag unknown) and read-your-writes falls back to a short sticky window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "Probe",
    "closed_locally",
    "format_lsn",
    "has_positions",
    "parse_lsn",
    "primary_position",
    "probe_replica",
    "replay_position",
]

_PG_PRIMARY = text("SELECT pg_current_wal_lsn()::text")
_PG_REPLAY = text("SELECT pg_last_wal_replay_lsn()::text")
_PG_PROBE = text(
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
    " EXTRACT(EPOCH FROM (clock_timestamp() - pg_last_xact_replay_timestamp()))::float8"
)
_PING = text("SELECT 1")


@dataclass(frozen=True, slots=True)
class Probe:
    """One look at a replica: its replayed position and the age of its last replayed commit."""

    replay: int | None = None  # None: no position (not PostgreSQL, or not a standby)
    replay_age: float | None = None  # seconds since the last replayed commit's time


def has_positions(dialect: str) -> bool:
    """True when ``dialect`` reports WAL positions (PostgreSQL)."""
    return dialect == "postgresql"


def parse_lsn(value: Any) -> int | None:
    """``'16/B374D848'`` -> a byte position; None stays None."""
    if value is None:
        return None
    high, _, low = str(value).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(position: int) -> str:
    """A byte position as PostgreSQL writes it (``16/B374D848``)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


async def primary_position(conn: AsyncConnection) -> int | None:
    """The primary's current WAL position (taken after a commit, it covers that commit)."""
    if not has_positions(conn.dialect.name):
        return None
    return parse_lsn((await conn.execute(_PG_PRIMARY)).scalar_one())


async def replay_position(conn: AsyncConnection) -> int | None:
    """How far a standby has replayed (None: not a standby, or no positions)."""
    if not has_positions(conn.dialect.name):
        return None
    return parse_lsn((await conn.execute(_PG_REPLAY)).scalar_one())


async def probe_replica(conn: AsyncConnection) -> Probe:
    """A round trip to the replica; on PostgreSQL also its replay position and age."""
    if not has_positions(conn.dialect.name):
        await conn.execute(_PING)
        return Probe()
    recovering, replay, age = (await conn.execute(_PG_PROBE)).one()
    if not recovering:  # a server that is not a standby: always current
        return Probe(None, 0.0)
    return Probe(parse_lsn(replay), None if age is None else max(float(age), 0.0))


def closed_locally(dbapi_connection: Any) -> bool:
    """True when the driver already knows the socket is gone (no round trip).

    asyncpg notices the server's goodbye (a stopped standby) as soon as the loop reads
    it; the pool then replaces the connection at checkout instead of failing the read.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False
