"""Pool introspection: one dict shape for every pool class SQLAlchemy may pick."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["pool_status"]


def _call(pool: Any, name: str) -> int:
    method = getattr(pool, name, None)
    return int(method()) if callable(method) else 0


def pool_status(engine: AsyncEngine) -> dict[str, Any]:
    """Size, checked-out, overflow and idle connections of ``engine``'s pool.

    Example: ``pool_status(engine)["checked_out"]`` is 0 when nothing leaked.
    """
    pool = engine.sync_engine.pool
    return {
        "pool": type(pool).__name__,
        "size": _call(pool, "size"),
        "checked_out": _call(pool, "checkedout"),
        "overflow": max(_call(pool, "overflow"), 0),
        "idle": _call(pool, "checkedin"),
    }
