"""Diagnostic routes, off unless ``APP_DIAGNOSTICS=true`` (then they answer; otherwise 404).

``GET /diagnostics/sleep?seconds=2`` holds a pooled connection for ``seconds`` with a
server-side sleep (``pg_sleep`` / ``SLEEP``): a real slow request for drain and
pool drills. Never enable it on a public deployment.

Example::

    $ APP_DIAGNOSTICS=true make run
    $ curl -s 'localhost:8000/diagnostics/sleep?seconds=1.5'
    {"slept": 1.5, "backend": "sqlite"}
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from internal.web.deps import SessionDep
from internal.web.schemas import SleepOut

__all__ = ["router", "server_sleep"]

router = APIRouter(prefix="/diagnostics", tags=["diagnostics"])


async def server_sleep(session: AsyncSession, seconds: float) -> str:
    """Sleep inside the database where it can (so the connection is really busy)."""
    backend = session.get_bind().dialect.name
    if backend == "postgresql":
        await session.execute(select(func.pg_sleep(seconds)))
    elif backend in ("mysql", "mariadb"):
        await session.execute(select(func.sleep(seconds)))
    else:
        await session.execute(select(literal(1)))
        await asyncio.sleep(seconds)
    return backend


@router.get("/sleep", response_model=SleepOut, summary="Hold a connection for a while (drills only)")
async def sleep(
    request: Request,
    session: SessionDep,
    seconds: float = Query(1.0, ge=0, description="how long to hold the connection"),
) -> SleepOut:
    options = request.app.state.options
    if options is None or not options.diagnostics:
        raise HTTPException(404, "diagnostics are disabled (set APP_DIAGNOSTICS=true)")
    seconds = min(seconds, options.max_diagnostic_sleep)
    backend = await server_sleep(session, seconds)
    return SleepOut(slept=seconds, backend=backend)
