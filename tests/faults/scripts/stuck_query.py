"""Run a 60-second query; the test signals the process while it is stuck.

Usage: stuck_query.py   (database from DB_URL; DB_SHUTDOWN_TIMEOUT bounds the stop)
"""

import asyncio

from sqlalchemy import text

from internal.infra.database import get_engine, get_session, init_async_db


async def main() -> None:
    await init_async_db()
    pg = get_engine().url.get_backend_name() == "postgresql"
    async with get_session() as session:
        print("ready", flush=True)
        await session.execute(text("SELECT pg_sleep(60)" if pg else "SELECT SLEEP(60)"))


asyncio.run(main())
