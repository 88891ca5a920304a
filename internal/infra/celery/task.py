"""``db_task``: a Celery task whose coroutine runs on the worker loop inside one transaction.

Example::

    @db_task(name="kit.rename")
    async def rename(session: AsyncSession, user_id: int, name: str) -> int:
        await users.update_by_id(user_id, username=name, session=session)
        return user_id

    rename.delay(5, "ada")     # COMMIT on success, ROLLBACK on error

Transient database errors (lost or refused connection, deadlock, serialization failure, no pooled
connection free within the pool timeout) are retried with exponential backoff and jitter;
integrity errors and programming errors (e.g. ``ConcurrentSessionUseError``) never are.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from celery import Celery, Task

from internal.infra.celery.app import celery_app
from internal.infra.celery.loop import run
from internal.infra.database import get_session
from pkg.database import transaction
from pkg.database.errors import IntegrityViolationError, PoolTimeoutError, TransientDatabaseError
from pkg.database.routing import consistency_scope

__all__ = ["RETRY_DEFAULTS", "db_task", "in_transaction"]

logger = logging.getLogger(__name__)

TaskFn = Callable[..., Awaitable[Any]]

RETRY_DEFAULTS: dict[str, Any] = {
    # ConnectionLostError is a ConnectionError; a raw one can still escape code outside the kit.
    # PoolTimeoutError: every connection busy for pool_timeout; later there may be a free one
    "autoretry_for": (TransientDatabaseError, PoolTimeoutError, ConnectionError),
    "dont_autoretry_for": (IntegrityViolationError,),
    "retry_backoff": 1,  # seconds: 1, 2, 4, ... (full jitter)
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 5,
}


async def in_transaction(fn: TaskFn, *args: Any, **kwargs: Any) -> Any:
    """``await fn(session, *args, **kwargs)`` in one transaction (commit or rollback).

    Each run has its own consistency scope: reads after its commit see it (read replicas),
    and nothing of an earlier task's writes holds its reads on the primary.
    """
    with consistency_scope():
        async with transaction(get_session) as session:
            return await fn(session, *args, **kwargs)


def db_task(app: Celery | None = None, **options: Any) -> Callable[[TaskFn], Task]:
    """Register ``async def fn(session, ...)`` as a Celery task with DB retry defaults."""
    target = app or celery_app
    merged = {**RETRY_DEFAULTS, **options}

    def decorate(fn: TaskFn) -> Task:
        def runner(*args: Any, **kwargs: Any) -> Any:
            return run(in_transaction(fn, *args, **kwargs))

        # name, docs and the signature without `session` (no __wrapped__): Celery checks the
        # call's arguments against it before sending
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(runner, attr, getattr(fn, attr))
        signature = inspect.signature(fn)
        runner.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=list(signature.parameters.values())[1:]
        )
        return target.task(**merged)(runner)

    return decorate
