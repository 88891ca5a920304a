"""The health of one replica: up, lagging or down, with its lag; one WARNING per change.

A replica is probed at most every ``probe_interval`` seconds (a round trip, and on
PostgreSQL its replay position against the primary's); one that is unreachable, or lags
more than ``max_lag`` seconds, serves no read until a later probe finds it well again.
A read that fails to connect marks it down at once.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass

from pkg.database.routing.positions import Probe

__all__ = ["ReplicaHealth", "State"]

logger = logging.getLogger("pkg.database.routing")


class State(enum.StrEnum):
    """A replica's state as routing sees it."""

    UNKNOWN = "unknown"  # not probed yet: serves (the first read or probe finds out)
    UP = "up"
    LAGGING = "lagging"
    DOWN = "down"


@dataclass(slots=True)
class ReplicaHealth:
    """The last known state of one replica and when it was learnt (monotonic seconds)."""

    name: str
    state: State = State.UNKNOWN
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    replay: int | None = None  # replayed WAL position (PostgreSQL)
    checked_at: float | None = None
    error: str | None = None

    @property
    def serving(self) -> bool:
        return self.state in (State.UNKNOWN, State.UP)

    def saw(self, probe: Probe, primary: int | None, max_lag: float) -> None:
        """Record a successful probe; ``primary``: the primary's position at the same time."""
        self.replay = probe.replay
        behind = None if primary is None or probe.replay is None else max(primary - probe.replay, 0)
        self.lag_bytes = behind
        if behind == 0:
            self.lag_seconds = 0.0
        else:  # behind (or unknown): how old the last replayed commit is
            self.lag_seconds = probe.replay_age
        self.error = None
        lagging = self.lag_seconds is not None and self.lag_seconds > max_lag
        self._become(State.LAGGING if lagging else State.UP, max_lag)

    def replayed(self, position: int | None) -> None:
        """A replay position seen outside a probe (a read-your-writes check)."""
        if position is not None and (self.replay is None or position > self.replay):
            self.replay = position

    def failed(self, error: BaseException) -> None:
        """Record that the replica could not be reached."""
        self.error = type(error).__name__
        self.lag_seconds = self.lag_bytes = None
        self._become(State.DOWN, None)

    def _become(self, state: State, max_lag: float | None) -> None:
        self.checked_at = time.monotonic()
        old, self.state = self.state, state
        if old is state:
            return
        if state is State.DOWN:
            logger.warning(
                "replica %s is down (%s): its reads go to other replicas or the primary",
                self.name,
                self.error,
            )
        elif state is State.LAGGING:
            logger.warning(
                "replica %s lags %.1fs (max %.1fs): its reads go elsewhere",
                self.name,
                self.lag_seconds,
                max_lag,
            )
        elif old is State.UNKNOWN:
            logger.info("replica %s is up (lag %s s)", self.name, self.lag_seconds)
        else:
            logger.warning("replica %s is back in service (was %s)", self.name, old.value)

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "lag_bytes": self.lag_bytes,
            "error": self.error,
        }
