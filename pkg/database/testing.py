"""Test helpers for applications using the kit.

Example::

    async def test_handler_returns_its_connection(engine):
        await handler()
        assert_no_checked_out_connections(engine)
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.lifecycle.leaks import checked_out_connections
from pkg.database.pool import pool_status

__all__ = ["assert_no_checked_out_connections"]


def assert_no_checked_out_connections(*engines: AsyncEngine) -> None:
    """Fail, naming each owner (task, call site, age), if any connection is still checked out."""
    problems = []
    for engine in engines:
        held = checked_out_connections(engine)
        counted = pool_status(engine)["checked_out"]
        if held or counted:
            owners = "; ".join(h.describe() for h in held) or "owners unknown"
            problems.append(f"{engine.url.render_as_string(hide_password=True)}: {counted} out ({owners})")
    if problems:
        raise AssertionError("connections still checked out: " + " | ".join(problems))
