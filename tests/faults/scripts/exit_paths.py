"""Use the database, then leave without any explicit close, in the way MODE names.

Usage: exit_paths.py MODE   (return | raise | raise_in_transaction | raise_after_run | manual_loop)
"""

import asyncio
import sys
import warnings

from sqlalchemy import text

from internal.infra.database import get_session, init_async_db


async def use(mode: str) -> None:
    await init_async_db()
    async with get_session() as session:
        await session.execute(text("SELECT 1"))
        if mode == "raise_in_transaction":
            raise RuntimeError("boom inside a transaction")
    if mode == "raise":
        raise RuntimeError("boom after the session")
    print("used", flush=True)


def main(mode: str) -> None:
    if mode == "manual_loop":  # a loop that is never closed: the exit hook disposes on it
        # The unclosed loop is this script's own doing; its warning is not the kit's noise.
        warnings.filterwarnings("ignore", "unclosed event loop", ResourceWarning)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(use(mode))
        return
    asyncio.run(use(mode))
    if mode == "raise_after_run":
        raise RuntimeError("boom outside the loop")


main(sys.argv[1])
