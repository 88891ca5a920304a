"""Close one engine within a deadline: graceful first, then hard for what is still held.

Run on the loop that owns the connections. Idle connections are closed at once;
checked-out ones get until the deadline to come back; past it each is killed on the
server (``pg_terminate_backend`` / ``KILL``; behind PgBouncer only the socket, since the
server connection is shared) and its socket is dropped, with a WARNING naming the owners.

Example::

    report = await close_engine(engine, timeout=5)
    assert report.forced == 0
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util.concurrency import greenlet_spawn

from pkg.database.lifecycle.leaks import Checkout, checked_out_connections
from pkg.database.utils import behind_pooler, mask_url

__all__ = [
    "CloseReport",
    "close_engine",
    "kill_server_sessions",
    "server_session_ids",
    "terminate_driver_connection",
]

logger = logging.getLogger(__name__)

_POLL = 0.02
_RETURN_GRACE = 1.0  # after forcing, how long the killed connections get to come back


@dataclass(frozen=True, slots=True)
class CloseReport:
    """What a close found and did: connections still ``checked_out`` at the start, how many
    had to be ``forced`` closed past the deadline, their ``owners``, and seconds ``elapsed``."""

    checked_out: int
    forced: int
    owners: tuple[str, ...]
    elapsed: float

    @classmethod
    def combine(cls, reports: Sequence[CloseReport], elapsed: float) -> CloseReport:
        """One report for several engines closed one after another."""
        return cls(
            checked_out=sum(r.checked_out for r in reports),
            forced=sum(r.forced for r in reports),
            owners=tuple(owner for r in reports for owner in r.owners),
            elapsed=elapsed,
        )


def _server_pid(backend: str, driver_connection: Any) -> int | None:
    try:
        if backend == "postgresql":
            return int(driver_connection.get_server_pid())
        if backend == "mysql":
            return int(driver_connection.thread_id())
    except Exception:  # a connection already broken has no server side left
        return None
    return None


def server_session_ids(engine: AsyncEngine, held: list[Checkout] | None = None) -> list[int]:
    """Server session ids (PG backend pid / MariaDB thread id) of the checked-out connections.

    None behind PgBouncer: the pid a client sees there is a random cancel key, and the server
    connection serves other clients' transactions, so it is never killed; closing the client
    socket makes PgBouncer drop the server connection it was mid-transaction on.
    """
    if behind_pooler(engine.sync_engine):
        return []
    backend = engine.url.get_backend_name()
    held = checked_out_connections(engine) if held is None else held
    return [pid for h in held if (pid := _server_pid(backend, h.driver_connection)) is not None]


async def kill_server_sessions(engine: AsyncEngine, pids: list[int]) -> None:
    """End the server sessions from a separate connection (the held ones may be busy)."""
    backend = engine.url.get_backend_name()
    sql = "SELECT pg_terminate_backend(:pid)" if backend == "postgresql" else "KILL CONNECTION {pid}"
    killer = create_async_engine(engine.url, poolclass=NullPool)
    try:
        async with killer.connect() as conn:
            for pid in pids:
                if backend == "postgresql":
                    await conn.execute(text(sql), {"pid": pid})
                else:
                    await conn.exec_driver_sql(sql.format(pid=int(pid)))
    except Exception as exc:
        logger.warning("could not kill %d server session(s) of %s: %r", len(pids), mask_url(engine.url), exc)
    finally:
        await killer.dispose()


def terminate_driver_connection(driver_connection: Any) -> None:
    """Drop a driver connection's socket now, without a round trip (sync, best effort)."""
    for name in ("terminate", "close"):  # asyncpg: terminate(); aiomysql: sync close()
        method = getattr(driver_connection, name, None)
        if callable(method) and not asyncio.iscoroutinefunction(method):
            try:
                method()
            except Exception as exc:
                logger.debug("terminating %r failed: %r", driver_connection, exc)
            return


async def _force(engine: AsyncEngine, held: list[Checkout]) -> None:
    backend = engine.url.get_backend_name()
    pids = server_session_ids(engine, held)
    if pids:
        await kill_server_sessions(engine, pids)
    for h in held:
        if backend == "sqlite":
            interrupt = getattr(getattr(h.driver_connection, "_conn", None), "interrupt", None)
            if callable(interrupt):
                interrupt()
        else:
            terminate_driver_connection(h.driver_connection)


def _still_out(engine: AsyncEngine, held: list[Checkout]) -> list[Checkout]:
    current = {h.key: h for h in checked_out_connections(engine)}
    return [h for h in held if current.get(h.key) is h]


async def _wait_returned(engine: AsyncEngine, held: list[Checkout], deadline: float) -> bool:
    while _still_out(engine, held):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


async def close_engine(engine: AsyncEngine, timeout: float | None = None) -> CloseReport:
    """Close ``engine`` from async code within ``timeout`` seconds, forcing what is left.

    None waits for every connection. The engine stays usable (a fresh pool connects lazily).
    """
    started = time.monotonic()
    deadline = float("inf") if timeout is None else started + timeout
    held = checked_out_connections(engine)
    owners = tuple(h.describe() for h in held)
    if held:
        logger.warning(
            "closing %s with %d connection(s) still checked out: %s",
            mask_url(engine.url),
            len(held),
            "; ".join(owners),
        )
    old_pool = engine.sync_engine.pool
    await engine.dispose()  # idle ones closed now; the engine gets a fresh, lazy pool
    forced = 0
    if not await _wait_returned(engine, held, deadline):
        still = _still_out(engine, held)
        forced = len(still)
        logger.warning(
            "shutdown timeout (%.1fs) for %s: forcing %d connection(s) closed: %s",
            timeout,
            mask_url(engine.url),
            forced,
            "; ".join(h.describe() for h in still),
        )
        await _force(engine, still)
        await _wait_returned(engine, still, time.monotonic() + _RETURN_GRACE)
    await greenlet_spawn(old_pool.dispose)  # connections returned after dispose() began
    return CloseReport(len(held), forced, owners, time.monotonic() - started)
