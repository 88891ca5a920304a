"""Read-your-writes: after a commit in this context, reads wait for a replica that has it.

A *consistency scope* is a ContextVar holding what the context has committed, per routed
database: the primary's WAL position (PostgreSQL) or the commit time (other backends).
The web app opens one per request, the worker one per task; without one, the first commit
opens one for the current context (a task and the tasks it starts later). Across requests
the caller carries a token::

    token = await consistency_token()      # after the write, e.g. in a response header
    ...
    with read_after(token):                # the next request
        user = await users.get(user_id)    # primary until a replica has replayed the write

Routing reads the scope: a replica serves a read session only once it has replayed the
scope's position (or, without positions, once the sticky window has passed).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from pkg.database.errors import InvalidConsistencyTokenError

__all__ = [
    "Mark",
    "Scope",
    "consistency_scope",
    "consistency_token",
    "current_scope",
    "mark_commit",
    "read_after",
    "reset_consistency",
]

PositionReader = Callable[[], Awaitable[int | None]]


@dataclass(slots=True)
class Mark:
    """What a context committed on one primary."""

    position: int | None = None  # highest WAL position the context must see
    committed_at: float | None = None  # wall-clock time of its last commit there
    reader: PositionReader | None = None  # reads the primary's position: set while pending

    async def resolve(self) -> None:
        """Turn a pending commit into the primary's current position (one round trip)."""
        reader, self.reader = self.reader, None
        if reader is not None:
            position = await reader()
            if position is not None:
                self.position = max(position, self.position or 0)


@dataclass(slots=True)
class Scope:
    """The marks of one context, by database key (mutable: shared by that context's tasks)."""

    marks: dict[str, Mark] = field(default_factory=dict)


_scope: ContextVar[Scope | None] = ContextVar("pkg_database_consistency", default=None)


def current_scope() -> Scope | None:
    """The scope of this context, if any."""
    return _scope.get()


def mark_commit(key: str, reader: PositionReader | None) -> None:
    """Record a commit on the routed primary ``key`` (from the engine's commit event).

    Sync and cheap: the position is read lazily, by the next routed read or token.
    """
    scope = _scope.get()
    if scope is None:
        scope = Scope()
        _scope.set(scope)
    mark = scope.marks.setdefault(key, Mark())
    mark.committed_at, mark.reader = time.time(), reader


@contextmanager
def consistency_scope() -> Iterator[Scope]:
    """A fresh scope for one unit of work (a request, a task): earlier commits not carried."""
    scope = Scope()
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


async def consistency_token() -> str | None:
    """An opaque token of this context's commits, for :func:`read_after`; None: nothing committed."""
    scope = _scope.get()
    if scope is None or not scope.marks:
        return None
    parts = []
    for key, mark in sorted(scope.marks.items()):
        await mark.resolve()
        if mark.position is not None:
            parts.append(f"{key}|lsn:{mark.position:x}")
        elif mark.committed_at is not None:
            parts.append(f"{key}|at:{mark.committed_at:.6f}")
    return ";".join(parts) or None


def _parse(token: str) -> Scope:
    scope = Scope()
    try:
        for part in token.split(";"):
            key, _, value = part.rpartition("|")
            kind, _, number = value.partition(":")
            if not key or kind not in ("lsn", "at"):
                raise ValueError(part)
            mark = Mark(position=int(number, 16)) if kind == "lsn" else Mark(committed_at=float(number))
            scope.marks[key] = mark
    except ValueError as exc:
        raise InvalidConsistencyTokenError("not a consistency token (from consistency_token())") from exc
    return scope


@contextmanager
def read_after(token: str | None) -> Iterator[Scope]:
    """A scope that sees what ``token`` committed (None: a fresh scope); commits inside add to it."""
    scope = _parse(token) if token else Scope()
    handle = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(handle)


def reset_consistency() -> None:
    """Forget this context's scope (tests)."""
    _scope.set(None)
