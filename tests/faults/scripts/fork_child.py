"""Fork while the parent's pool holds a live connection; both sides keep working.

Usage: fork_child.py EXIT   (EXIT: os_exit | sys_exit: how the child leaves)
Prints one JSON line per process: {"who", "server_pid"}.
"""

import asyncio
import json
import os
import sys

from sqlalchemy import text

from internal.infra.database import get_engine, init_async_db

PID_SQL = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT connection_id()", "sqlite": "SELECT 0"}


async def server_pid() -> int:
    await init_async_db()
    engine = get_engine()
    async with engine.connect() as conn:
        return int((await conn.execute(text(PID_SQL[engine.url.get_backend_name()]))).scalar_one())


def report(who: str, pid: int) -> None:
    print(json.dumps({"who": who, "server_pid": pid}), flush=True)


def main(child_exit: str) -> None:
    loop = asyncio.new_event_loop()  # stays open: its pool keeps a live connection
    report("parent-before", loop.run_until_complete(server_pid()))
    child = os.fork()
    if child == 0:
        report("child", asyncio.run(server_pid()))
        if child_exit == "os_exit":
            os._exit(0)
        sys.exit(0)
    _, status = os.waitpid(child, 0)
    report("parent-after", loop.run_until_complete(server_pid()))
    print(json.dumps({"child_status": status}), flush=True)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


main(sys.argv[1])
