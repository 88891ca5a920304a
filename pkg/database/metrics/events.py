"""The typed events a metrics hook receives: one small frozen record per thing that happened.

Every event names its ``engine`` (a bounded label: ``metrics_name``, the application name,
``primary`` / ``replica-0`` ...); none carries SQL text, table names, parameters or URLs.
The connection events keep one invariant a hook may rely on: per engine, the number of
open connections is ``created - closed`` and the number in use is ``checked out -
checked in``; a connection that dies in use is first checked in, then closed.

Example hook::

    def hook(event: MetricsEvent) -> None:
        if isinstance(event, QueryExecuted) and event.slow:
            statsd.incr(f"db.{event.engine}.slow.{event.operation}")

    add_metrics_hook(hook)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "ConnectionCheckedIn",
    "ConnectionCheckedOut",
    "ConnectionClosed",
    "ConnectionCreated",
    "ConnectionInvalidated",
    "InvalidationReason",
    "MetricsEvent",
    "MetricsHook",
    "Operation",
    "Outcome",
    "PendingRequests",
    "PoolCapacity",
    "PoolTimedOut",
    "QueryExecuted",
    "ReplicaLag",
    "RouteDecided",
]

Operation = Literal["SELECT", "INSERT", "UPDATE", "DELETE", "OTHER"]
Outcome = Literal["ok", "error", "cancelled"]
InvalidationReason = Literal["disconnect", "error", "explicit", "soft"]


@dataclass(frozen=True, slots=True)
class ConnectionCreated:
    """A connection was opened and is idle in the pool. ``adopted``: it already existed when
    metrics were switched on for its engine (counted as open, not as created)."""

    engine: str
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class ConnectionCheckedOut:
    """An idle connection was handed out after ``wait`` seconds in the pool's queue
    (0.0 for pools that do not time their queue)."""

    engine: str
    wait: float


@dataclass(frozen=True, slots=True)
class ConnectionCheckedIn:
    """A connection came back after ``use`` seconds checked out; it is idle again."""

    engine: str
    use: float


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """An idle connection was closed (recycled, invalidated, disposed, overflow returned)."""

    engine: str


@dataclass(frozen=True, slots=True)
class ConnectionInvalidated:
    """A connection was invalidated: ``disconnect`` (server gone, backend killed, failed
    pre-ping), ``error`` (another error), ``explicit`` (``invalidate()`` without error) or
    ``soft`` (recycled at its next checkout)."""

    engine: str
    reason: InvalidationReason


@dataclass(frozen=True, slots=True)
class PendingRequests:
    """A request for a connection started (+1) or ended (-1) waiting in the pool's queue."""

    engine: str
    delta: int


@dataclass(frozen=True, slots=True)
class PoolTimedOut:
    """No connection became free within ``pool_timeout``: a ``PoolTimeoutError``."""

    engine: str
    wait: float


@dataclass(frozen=True, slots=True)
class PoolCapacity:
    """The most connections the engine's pool may open (size + overflow), added (``delta`` > 0)
    when metrics start for the engine and removed when they stop or the engine is gone."""

    engine: str
    delta: int


@dataclass(frozen=True, slots=True)
class QueryExecuted:
    """One statement sent to the driver: ``operation`` from its first keyword, ``duration`` in
    seconds, ``slow`` past the engine's threshold, ``error`` the kit's error class name."""

    engine: str
    system: str
    operation: Operation
    outcome: Outcome
    duration: float
    slow: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RouteDecided:
    """A session was routed to ``target`` (``primary`` or ``replica``); for read replicas."""

    engine: str
    target: str


@dataclass(frozen=True, slots=True)
class ReplicaLag:
    """The measured replication lag of a replica engine, in seconds."""

    engine: str
    seconds: float


MetricsEvent: TypeAlias = (
    ConnectionCreated
    | ConnectionCheckedOut
    | ConnectionCheckedIn
    | ConnectionClosed
    | ConnectionInvalidated
    | PendingRequests
    | PoolTimedOut
    | PoolCapacity
    | QueryExecuted
    | RouteDecided
    | ReplicaLag
)
MetricsHook: TypeAlias = Callable[[MetricsEvent], None]
