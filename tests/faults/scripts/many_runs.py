"""N sequential asyncio.run() calls on one process-wide database; prints a JSON summary.

Usage: many_runs.py N MODE   (MODE: keep = init once, reuse; reset = reset+init per run)
"""

import asyncio
import json
import sys

from sqlalchemy import text

from internal.infra.database import get_engine, get_session, init_async_db, reset_async_db

COUNT_SQL = {
    # this script's own sessions (other clients, e.g. PgBouncer's server pool, may use the database)
    "postgresql": (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = current_setting('application_name')"
    ),
    "mysql": "SELECT count(*) FROM information_schema.processlist WHERE db = database()",
    "sqlite": "SELECT 0",
}


async def one(mode: str) -> int:
    if mode == "reset":
        reset_async_db()
    await init_async_db()
    backend = get_engine().url.get_backend_name()
    async with get_session() as session:
        return int((await session.execute(text(COUNT_SQL[backend]))).scalar_one())


def main(n: int, mode: str) -> None:
    peak = 0
    for _ in range(n):
        peak = max(peak, asyncio.run(one(mode)))
    print(json.dumps({"runs": n, "peak_connections": peak}), flush=True)


main(int(sys.argv[1]), sys.argv[2])
