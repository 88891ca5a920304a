"""Example tasks writing through :class:`UserDao`, one transaction per attempt.

Example::

    from internal.infra.celery.tasks import import_users, recompute_profiles
    import_users.delay([{"username": "ada", "email": "ada@example.com"}])
    recompute_profiles.delay(batch_size=500)

Both retry on transient errors (lost connection, deadlock, serialization failure);
``import_users`` never retries a duplicate e-mail: the task fails with
``DuplicateKeyError`` and nothing of that batch is written.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from celery import current_task
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from internal.dao.user import UserDao
from internal.infra.celery.task import RETRY_DEFAULTS, db_task
from internal.infra.database import get_session
from pkg.database.errors import StaleDataError

__all__ = ["MAX_SERVER_DELAY", "import_users", "recompute_profiles"]

logger = logging.getLogger(__name__)

MAX_SERVER_DELAY = 60.0
users = UserDao(session_provider=get_session)


def _attempt() -> int:
    return int(current_task.request.retries or 0) if current_task else 0


async def _server_delay(session: AsyncSession, seconds: float) -> None:
    """Keep the connection busy server-side (PostgreSQL ``pg_sleep``), for drills."""
    seconds = min(max(seconds, 0.0), MAX_SERVER_DELAY)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_sleep(seconds)))
    else:
        await asyncio.sleep(seconds)


@db_task(name="kit.import_users")
async def import_users(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert ``rows`` (``User`` fields) in one transaction; returns the count and retries."""
    imported = await users.create_many(rows, session=session)
    logger.info("imported %d user(s) (attempt %d)", imported, _attempt() + 1)
    return {"imported": imported, "retries": _attempt()}


@db_task(name="kit.recompute_profiles", autoretry_for=(*RETRY_DEFAULTS["autoretry_for"], StaleDataError))
async def recompute_profiles(
    session: AsyncSession, batch_size: int = 500, server_delay: float = 0.0
) -> dict[str, int]:
    """Store each live user's e-mail domain in ``profile["email_domain"]``, walking by keyset.

    ``server_delay`` (seconds, capped) first holds the connection busy: a slow-job drill.
    A concurrent edit (stale version) retries the whole job.
    """
    if server_delay:
        await _server_delay(session, server_delay)
    updated, cursor = 0, None
    while True:
        page = await users.query().order_by("id").keyset(batch_size, after=cursor, session=session)
        for user in page.items:
            domain = user.email.rpartition("@")[2].lower()
            if (user.profile or {}).get("email_domain") != domain:
                user.profile = {**(user.profile or {}), "email_domain": domain}
                updated += 1
        await session.flush()
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    logger.info("recomputed %d profile(s) (attempt %d)", updated, _attempt() + 1)
    return {"updated": updated, "retries": _attempt()}
