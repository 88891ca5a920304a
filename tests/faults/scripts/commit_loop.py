"""Commit two-row batches in a loop, printing each committed batch; the test signals it.

Usage: commit_loop.py TABLE   (database from DB_URL; no cleanup code here on purpose)
"""

import asyncio
import sys

from sqlalchemy import text

from internal.infra.database import get_session, init_async_db


async def main(table: str) -> None:
    await init_async_db()
    insert = text(f"INSERT INTO {table} (batch, part) VALUES (:batch, :part)")
    print("ready", flush=True)
    batch = 0
    while True:
        batch += 1
        async with get_session() as session:
            await session.execute(insert, {"batch": batch, "part": 1})
            await asyncio.sleep(0.002)  # a window in which the transaction is open
            await session.execute(insert, {"batch": batch, "part": 2})
            await session.commit()
        print(batch, flush=True)


asyncio.run(main(sys.argv[1]))
