"""A primary (and optional read) engine with its sessions, closed and reset safely.

Example::

    db = Database("postgresql+asyncpg://app@db/app", pool_size=10)
    async with db.session() as session:     # rolls back on error, never commits
        ...
        await session.commit()
    await db.close(timeout=5)
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pkg.database.engine import new_async_engine, new_async_session_maker
from pkg.database.errors import translate_error
from pkg.database.lifecycle.autodispose import release_engine
from pkg.database.lifecycle.shutdown import CloseReport, close_engine
from pkg.database.pool import kit_pool_options, pool_status
from pkg.database.routing.router import Replica, Router
from pkg.database.routing.spec import ReplicaSpec, normalize_replicas

__all__ = ["Database", "managed_session"]

logger = logging.getLogger(__name__)


@asynccontextmanager
async def managed_session(
    maker: Callable[[], AbstractAsyncContextManager[AsyncSession]], *, autoflush: bool = True
) -> AsyncIterator[AsyncSession]:
    """Yield a session that rolls back on error and never commits by itself.

    SQLAlchemy and driver errors leave as the kit's typed errors, cause kept.
    """
    async with maker() as session:
        session.autoflush = autoflush
        try:
            yield session
        except BaseException as exc:
            await session.rollback()
            translated = translate_error(exc)
            if translated is not exc:
                raise translated from exc
            raise


class Database:
    """Owns the engines and session makers of one database (and its replica)."""

    def __init__(
        self,
        url: str | URL,
        *,
        read_url: str | URL | None = None,
        read_urls: Sequence[str | URL | ReplicaSpec] | None = None,
        routing: Mapping[str, Any] | None = None,
        **engine_options: Any,
    ) -> None:
        self.url = url
        name = engine_options.pop("metrics_name", None)  # metrics label: primary, replica-0
        self.engine: AsyncEngine = new_async_engine(
            url, **{**kit_pool_options(url), "metrics_name": name or "primary", **engine_options}
        )
        specs = normalize_replicas([*([read_url] if read_url else []), *(read_urls or ())])
        self.replicas = [self._replica(spec, name, engine_options) for spec in specs]
        self.read_engine: AsyncEngine | None = self.replicas[0].engine if self.replicas else None
        self.session_maker = new_async_session_maker(self.engine)
        self.read_session_maker = (
            new_async_session_maker(self.read_engine) if self.read_engine else self.session_maker
        )
        self.router: Router | None = (
            Router(self.engine, self.replicas, **dict(routing or {})) if self.replicas else None
        )

    @staticmethod
    def _replica(spec: ReplicaSpec, base: str | None, engine_options: dict[str, Any]) -> Replica:
        """One replica engine, its metrics label ``<name>`` (or ``<base>-<name>``)."""
        label = f"{base}-{spec.name}" if base else spec.name
        options = {**kit_pool_options(spec.url), "metrics_name": label, **engine_options}
        return Replica(str(spec.name), new_async_engine(spec.url, **options), spec.weight)

    def session(self, autoflush: bool = True) -> Any:
        """An async context manager of a session on the primary."""
        return managed_session(self.session_maker, autoflush=autoflush)

    def read_session(self, autoflush: bool = True) -> Any:
        """A read session: routed over the replicas when configured (read-only, one engine for
        its life, see :mod:`pkg.database.routing`), else a plain session on the primary."""
        if self.router is None:
            return managed_session(self.session_maker, autoflush=autoflush)
        return managed_session(self.router.session, autoflush=autoflush)

    async def check_replicas(self, *, required: bool = False, due_only: bool = False) -> None:
        """Probe the replicas now (at start): one down is a WARNING (reads use the primary),
        or with ``required`` a :class:`~pkg.database.errors.ReplicaUnavailableError`.
        ``due_only``: only if the last probe is older than the probe interval (health checks)."""
        if self.router is None:
            return
        if due_only:
            await self.router.probe()
        else:
            await self.router.check(required=required)

    def engines(self) -> list[AsyncEngine]:
        return [self.engine, *(r.engine for r in self.replicas)]

    def pool_status(self) -> dict[str, Any]:
        """The primary's pool counters; with replicas also ``engines``: each engine's pool,
        state and lag (``read``: the first replica's pool, as before)."""
        status = pool_status(self.engine)
        if self.router is None:
            return status
        assert self.read_engine is not None
        status["read"] = pool_status(self.read_engine)
        health = self.router.status()
        engines: dict[str, Any] = {"primary": {**pool_status(self.engine), "state": "up", "lag_seconds": 0.0}}
        for replica in self.replicas:
            engines[replica.name] = {**pool_status(replica.engine), **health[replica.name]}
        status["engines"] = engines
        return status

    async def close(self, timeout: float | None = None) -> CloseReport:
        """Close every engine from async code (app shutdown) within ``timeout`` seconds.

        Past the deadline the rest is closed hard; the report counts what was still
        checked out, names the owners, and says how many connections were forced.
        """
        if self.router is not None:
            self.router.close()
        started = time.monotonic()
        reports = []
        for engine in self.engines():
            remaining = None if timeout is None else max(timeout - (time.monotonic() - started), 0.01)
            reports.append(await close_engine(engine, remaining))
        return CloseReport.combine(reports, time.monotonic() - started)

    def release(self) -> None:
        """Close the engines from sync code, each on the loop that owns its connections.

        Use it where you cannot await (a forked child, before a new event loop). On the
        running owner loop the close is scheduled and finishes before that loop ends; in
        a forked child the parent's sockets are left alone.
        """
        if self.router is not None:
            self.router.close()
        for engine in self.engines():
            release_engine(engine)
