"""A minimal FastAPI app served by uvicorn: the app's lifespan owns the database.

Usage: uvicorn_app.py PORT. GET /slow holds a transaction for 1.5 s, then commits.
"""

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from internal.infra.database import close_async_db, get_session, init_async_db


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await init_async_db()  # installs the kit's handlers AFTER uvicorn's: they must chain
    yield
    report = await close_async_db()
    print(f"closed checked_out={report.checked_out if report else None}", flush=True)


app = FastAPI(lifespan=lifespan)


@app.get("/slow")
async def slow() -> dict[str, int]:
    async with get_session() as session:
        value = (await session.execute(text("SELECT 1"))).scalar_one()
        print("in transaction", flush=True)  # the test signals the server now
        await asyncio.sleep(1.5)
        await session.commit()
    return {"value": int(value)}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
