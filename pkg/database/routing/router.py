"""The router: which engine a read session uses (a replica, chosen by weight, or the primary).

One :class:`Router` per database with replicas (``Database(url, read_urls=[...])`` builds
it). A read session picks ONE engine when it opens and keeps it for its whole life:

* the primary when asked (``for_update()``), when no replica is serving (down, lagging more
  than ``max_lag``), or while this context's own commits are not replayed yet
  (read-your-writes, :mod:`pkg.database.routing.consistency`);
* otherwise a serving replica, drawn with probability proportional to its weight.

Writes, ``transaction()`` and ``session=`` joins never come here: they are on the primary.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pkg.database.errors import ReplicaUnavailableError, translate_error
from pkg.database.routing.consistency import Mark, current_scope, mark_commit
from pkg.database.routing.health import ReplicaHealth, State
from pkg.database.routing.positions import closed_locally, primary_position, probe_replica, replay_position
from pkg.database.routing.session import ROUTE_KEY, RoutedSession
from pkg.database.utils import mask_url

__all__ = ["Replica", "Router", "has_router", "routed", "router_for"]

logger = logging.getLogger("pkg.database.routing")

_routers: weakref.WeakKeyDictionary[Engine, Router] = weakref.WeakKeyDictionary()


@dataclass(eq=False)
class Replica:
    """One replica engine with its weight and health."""

    name: str
    engine: AsyncEngine
    weight: float = 1.0
    health: ReplicaHealth = field(init=False)

    def __post_init__(self) -> None:
        self.health = ReplicaHealth(self.name)


class Router:
    """Routes the read sessions of one primary over its replicas (see the module doc)."""

    def __init__(
        self,
        primary: AsyncEngine,
        replicas: Sequence[Replica],
        *,
        max_lag: float = 30.0,
        probe_interval: float = 5.0,
        probe_timeout: float = 2.0,
        sticky_seconds: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.primary, self.replicas = primary, list(replicas)
        self.max_lag, self.probe_interval, self.probe_timeout = max_lag, probe_interval, probe_timeout
        self.sticky_seconds = sticky_seconds
        self.key = _database_key(primary)
        self.fallbacks = 0  # read sessions moved to the primary by a replica's connection failure
        self._rng = rng or random.Random()
        self._probed_at: float | None = None
        self._probing = False
        self._primary_maker = _maker(primary)
        self._makers = {r.name: _maker(r.engine) for r in replicas}
        _routers[primary.sync_engine] = self
        event.listen(primary.sync_engine, "commit", self._on_commit)
        for replica in self.replicas:
            event.listen(replica.engine.sync_engine, "checkout", _drop_closed)

    # -- read-your-writes ---------------------------------------------------------------
    def _on_commit(self, _conn: Any) -> None:
        mark_commit(self.key, self.position)

    async def position(self) -> int | None:
        """The primary's current WAL position (None on backends without one)."""
        async with self.primary.connect() as conn:
            return await primary_position(conn)

    async def _mark(self) -> Mark | None:
        scope = current_scope()
        mark = scope.marks.get(self.key) if scope is not None else None
        if mark is not None:
            await mark.resolve()
        return mark

    def _sticky(self, mark: Mark | None) -> bool:
        """Without a position: the primary for ``sticky_seconds`` after the context's commit."""
        if mark is None or mark.position is not None or mark.committed_at is None:
            return False
        return time.time() < mark.committed_at + self.sticky_seconds

    async def _has_replayed(self, replica: Replica, mark: Mark | None) -> bool:
        if mark is None or mark.position is None:
            return True
        seen = replica.health.replay
        if seen is not None and seen >= mark.position:
            return True
        try:
            async with asyncio.timeout(self.probe_timeout), replica.engine.connect() as conn:
                seen = await replay_position(conn)
        except Exception as exc:
            replica.health.failed(translate_error(exc))
            return False
        replica.health.replayed(seen)
        return seen is None or seen >= mark.position  # None: not a standby, always current

    # -- choice -------------------------------------------------------------------------
    def choose(self) -> Replica | None:
        """A serving replica drawn by weight, or None."""
        serving = [r for r in self.replicas if r.health.serving]
        if not serving:
            return None
        return self._rng.choices(serving, weights=[r.weight for r in serving])[0]

    async def pick(self, *, primary: bool = False) -> Replica | None:
        """The replica a new read session uses, or None for the primary."""
        if primary or not self.replicas:
            return None
        await self.probe()
        mark = await self._mark()
        if self._sticky(mark):
            return None
        replica = self.choose()
        if replica is not None and not await self._has_replayed(replica, mark):
            return None
        return replica

    @asynccontextmanager
    async def session(self, *, primary: bool = False, autoflush: bool = True) -> AsyncIterator[AsyncSession]:
        """A read session on the chosen engine (see the module doc); never commits."""
        replica = await self.pick(primary=primary)
        maker = self._primary_maker if replica is None else self._makers[replica.name]
        async with maker() as session:
            assert isinstance(session, RoutedSession)
            session.router, session.replica = self, replica
            session.info[ROUTE_KEY] = "primary" if replica is None else replica.name
            session.autoflush = autoflush
            yield session

    # -- health -------------------------------------------------------------------------
    async def probe(self, *, force: bool = False) -> None:
        """Probe every replica if the last probe is older than ``probe_interval`` (or ``force``)."""
        now = time.monotonic()
        due = self._probed_at is None or now - self._probed_at >= self.probe_interval
        if self._probing or not (due or force):
            return
        self._probing, self._probed_at = True, now
        try:
            primary = await self._primary_position_or_none()
            await asyncio.gather(*(self._probe_one(r, primary) for r in self.replicas))
        finally:
            self._probing = False

    async def _primary_position_or_none(self) -> int | None:
        try:
            async with asyncio.timeout(self.probe_timeout):
                return await self.position()
        except Exception as exc:  # the primary's own errors surface on its own reads
            logger.debug("replica probe: primary position unavailable (%s)", type(exc).__name__)
            return None

    async def _probe_one(self, replica: Replica, primary: int | None) -> None:
        try:
            async with asyncio.timeout(self.probe_timeout), replica.engine.connect() as conn:
                found = await probe_replica(conn)
        except Exception as exc:
            replica.health.failed(translate_error(exc))
            return
        replica.health.saw(found, primary, self.max_lag)

    async def check(self, *, required: bool = False) -> None:
        """Probe now (at start): an unreachable replica logs its one WARNING (reads use the
        primary meanwhile), or with ``required`` raises :class:`ReplicaUnavailableError`."""
        await self.probe(force=True)
        down = [r for r in self.replicas if r.health.state is State.DOWN]
        if down and required:
            names = ", ".join(f"{r.name} ({mask_url(r.engine.url)})" for r in down)
            raise ReplicaUnavailableError(f"replica(s) unreachable at start: {names}")

    def status(self) -> dict[str, dict[str, Any]]:
        """Each replica's state, lag and weight, by name."""
        return {r.name: {**r.health.as_dict(), "weight": r.weight} for r in self.replicas}

    def close(self) -> None:
        """Stop routing for this primary (its commits are no longer marked)."""
        _routers.pop(self.primary.sync_engine, None)
        if event.contains(self.primary.sync_engine, "commit", self._on_commit):
            event.remove(self.primary.sync_engine, "commit", self._on_commit)


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Checkout: a connection the driver knows is closed is replaced, not used (no round trip)."""
    if closed_locally(dbapi_connection):
        raise DisconnectionError("replica connection closed by the server")


def _maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=RoutedSession, expire_on_commit=False)


def _database_key(engine: AsyncEngine) -> str:
    url = engine.url
    return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"


def router_for(session: AsyncSession) -> Router | None:
    """The router of the primary ``session`` is bound to, or None."""
    bind: Any = session.bind
    return _routers.get(getattr(bind, "sync_engine", bind)) if bind is not None else None


def has_router(engine: AsyncEngine) -> bool:
    """True when reads of ``engine`` are routed (replicas configured for it)."""
    return bool(_routers) and engine.sync_engine in _routers


def routed(session: AsyncSession, *, primary: bool = False) -> AbstractAsyncContextManager[AsyncSession]:
    """The read session to use instead of ``session`` (a fresh, unconnected primary session).

    Without a router for its engine (no replicas configured), ``session`` itself: nothing
    changes. ``primary``: the read must see the primary (``for_update()``).
    """
    router = router_for(session) if _routers else None
    if router is None:
        return nullcontext(session)
    return router.session(primary=primary, autoflush=session.autoflush)
