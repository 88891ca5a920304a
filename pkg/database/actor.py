"""Who is writing: the actor that ``AuditMixin`` records as ``creator_id`` / ``updater_id``.

Example::

    with acting_as(user.id):
        await dao.update_by_id(5, name="x")   # updater_id = user.id
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["acting_as", "current_actor"]

_actor: ContextVar[Any] = ContextVar("pkg_database_actor", default=None)


def current_actor() -> Any:
    """The actor set by the innermost ``acting_as``, or None."""
    return _actor.get()


@contextmanager
def acting_as(actor: Any) -> Iterator[None]:
    """Attribute writes inside the block to ``actor`` (``creator_id`` / ``updater_id``)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)
