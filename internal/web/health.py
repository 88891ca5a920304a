"""Liveness and database health: ``/health`` (process up) and ``/health/db`` (real round trip).

Example::

    $ curl -s localhost:8000/health/db
    {"status": "ok", "latency_ms": 0.8, "pool": {"pool": "AsyncAdaptedQueuePool", "size": 5, ...},
     "migrations": {"revision": "61209dda7124", "head": "61209dda7124", "current": true}}

``migrations.current`` false means the database is behind (or ahead of) the code: run `make migrate`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import literal, select
from sqlalchemy.exc import SQLAlchemyError

from internal.infra.database import get_engine, get_session, pool_status, refresh_replicas
from internal.infra.migrations import schema_status
from internal.web.schemas import DbHealthOut, HealthOut, SchemaOut
from pkg.database.errors import DatabaseError

__all__ = ["PING_TIMEOUT", "check_schema", "ping_database", "router"]

logger = logging.getLogger(__name__)

PING_TIMEOUT = 5.0  # seconds; a health probe must answer even when the server hangs
router = APIRouter(tags=["health"])


async def ping_database(timeout: float = PING_TIMEOUT) -> float:
    """One ``SELECT 1`` through the pool; returns the latency in milliseconds."""
    started = time.perf_counter()
    async with asyncio.timeout(timeout), get_session() as session:
        await session.execute(select(literal(1)))
    return (time.perf_counter() - started) * 1000


async def check_schema(timeout: float = PING_TIMEOUT) -> SchemaOut:
    """The database's migration revision against the code's head."""
    async with asyncio.timeout(timeout):
        status = await schema_status(get_engine())
    return SchemaOut(revision=status.revision, head=status.head, current=status.current)


def _safe_pool_status() -> dict[str, Any] | None:
    try:
        return pool_status()
    except DatabaseError:
        return None


@router.get("/health", response_model=HealthOut, summary="The process is up")
async def health() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/health/db",
    response_model=DbHealthOut,
    summary="A real database round trip, pool counters and the schema revision",
    responses={503: {"model": DbHealthOut, "description": "The database is unreachable"}},
)
async def health_db() -> Any:
    try:
        latency = await ping_database()
        await refresh_replicas()  # pool.engines: each replica's state and lag, fresh
        schema = await check_schema()
    except (DatabaseError, SQLAlchemyError, OSError, TimeoutError) as exc:
        logger.warning("database health check failed: %s", type(exc).__name__)
        body = DbHealthOut(status="unavailable", error=type(exc).__name__, pool=_safe_pool_status())
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    return DbHealthOut(status="ok", latency_ms=round(latency, 3), pool=_safe_pool_status(), migrations=schema)
