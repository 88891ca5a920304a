"""Look at the PostgreSQL server from outside the app: connections per application_name."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncpg
from sqlalchemy.engine import URL


def dsn(url: URL) -> str:
    """A plain ``postgresql://`` DSN for asyncpg from a sqlalchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def fetch(url: URL, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def connection_count(url: URL, app_name: str) -> int:
    sql = "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1"
    rows = await fetch(url, sql, app_name)
    return int(rows[0]["n"])


async def wait_no_connections(url: URL, app_name: str, timeout: float = 5.0) -> int:
    """Poll until no backend of ``app_name`` remains (backends exit asynchronously); the last count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    count = await connection_count(url, app_name)
    while count and loop.time() < deadline:
        await asyncio.sleep(0.1)
        count = await connection_count(url, app_name)
    return count


async def sleeping_backends(url: URL, app_name: str) -> list[int]:
    """PIDs of ``app_name`` backends currently running ``pg_sleep``."""
    rows = await fetch(
        url,
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'"
        " AND query ILIKE '%pg_sleep%'",
        app_name,
    )
    return [int(r["pid"]) for r in rows]


async def terminate(url: URL, pid: int) -> bool:
    rows = await fetch(url, "SELECT pg_terminate_backend($1) AS ok", pid)
    return bool(rows[0]["ok"])


class ConnectionSampler:
    """Samples the connection count of ``app_name`` in a thread until stopped; keeps the max."""

    def __init__(self, url: URL, app_name: str, interval: float = 0.05) -> None:
        self.url, self.app_name, self.interval = url, app_name, interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        conn = await asyncpg.connect(dsn(self.url))
        try:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            while not self._stop.is_set():
                self.samples.append(int(await conn.fetchval(sql, self.app_name)))
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)
