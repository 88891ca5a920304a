"""Registering an engine with the process lifecycle: the one place that wires it all.

:func:`new_async_engine` calls :func:`register_engine`; an engine built by hand can be
registered the same way::

    register_engine(create_async_engine(url))
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.lifecycle import registry
from pkg.database.lifecycle.autodispose import watch_engine
from pkg.database.lifecycle.leaks import attach_leak_tracker
from pkg.database.utils import mask_url

__all__ = ["register_engine"]


def register_engine(engine: AsyncEngine) -> AsyncEngine:
    """Track ``engine`` (weakly) for leak tracking and automatic disposal; idempotent.

    Signals are not touched: see :func:`pkg.database.lifecycle.install_signal_handlers`.
    """
    if not registry.add_engine(engine):
        return engine
    attach_leak_tracker(engine, mask_url(engine.url))
    watch_engine(engine)
    return engine
