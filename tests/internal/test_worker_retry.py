"""The worker retries a pool timeout (transient) with backoff, never a misuse.

Eager tasks on a real SQLite file whose pool has one connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import current_task
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from internal.config.load_config import Settings
from internal.infra.celery import loop
from internal.infra.celery.task import db_task
from internal.infra.database import get_engine
from pkg.database.errors import ConcurrentSessionUseError, PoolTimeoutError

attempts: list[int] = []


@db_task(name="kit.tests.pool_busy_on_first_attempt")
async def pool_busy_on_first_attempt(session: AsyncSession) -> int:
    """First attempt: the pool's only connection is held elsewhere, so the session times out."""
    attempts.append(int(current_task.request.retries or 0))
    if len(attempts) == 1:
        async with get_engine().connect() as held:
            await held.execute(text("SELECT 1"))
            await session.execute(text("SELECT 1"))  # waits DB_POOL_TIMEOUT: PoolTimeoutError
    return int((await session.execute(text("SELECT 2"))).scalar_one())


@db_task(name="kit.tests.misuse")
async def misuse(session: AsyncSession) -> None:
    attempts.append(int(current_task.request.retries or 0))
    raise ConcurrentSessionUseError("a bug, not a transient failure")


@pytest.fixture
def one_connection_worker(tmp_path: Path):
    settings = Settings(
        db_type="sqlite",
        db_database=str(tmp_path / "retry.db"),
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=0.2,
        db_slow_query_threshold=5,
    )
    attempts.clear()
    started = loop.start_worker_loop(settings)
    try:
        yield started
    finally:
        loop.stop_worker_loop()


def test_pool_timeout_is_retried_with_backoff(one_connection_worker) -> None:
    result = pool_busy_on_first_attempt.apply()
    assert result.state == "SUCCESS" and result.get() == 2
    assert attempts == [0, 1]  # the first attempt hit PoolTimeoutError, the retry succeeded
    assert issubclass(PoolTimeoutError, pool_busy_on_first_attempt.autoretry_for)
    assert pool_busy_on_first_attempt.retry_backoff and pool_busy_on_first_attempt.retry_jitter


def test_session_misuse_is_not_retried(one_connection_worker) -> None:
    result = misuse.apply()
    assert result.state == "FAILURE" and isinstance(result.result, ConcurrentSessionUseError)
    assert attempts == [0]
