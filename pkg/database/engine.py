"""Engine and session-maker factories: one place for pool, JSON codec and dialect options.

Example::

    engine = new_async_engine("postgresql+asyncpg://app@db/app", pool_size=10)
    Session = new_async_session_maker(engine)
    async with Session() as session:
        ...
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from pkg.database.errors import ConfigurationError
from pkg.database.lifecycle.register import register_engine
from pkg.database.liveness import DEFAULT_PING_AFTER, attach_liveness
from pkg.database.metrics.engines import track_engine
from pkg.database.metrics.hooks import engine_label
from pkg.database.monitoring import attach_query_monitor
from pkg.database.pgbouncer import POOLER_OPTION, check_mode, guard_session_features, pooler_connect_args
from pkg.database.pool import KitAsyncQueuePool, is_memory_sqlite
from pkg.database.reset import attach_cheap_reset
from pkg.database.types import adapt_datetimes
from pkg.database.utils import json_dumps, mask_url

__all__ = ["new_async_engine", "new_async_session_maker"]

logger = logging.getLogger(__name__)

_QUEUE_POOL_ARGS = ("pool_size", "max_overflow", "pool_timeout")


def _connect_args(url: URL, application_name: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """Dialect-specific connect arguments: the application name reaches the server."""
    args = dict(given)
    if not application_name:
        return args
    backend = url.get_backend_name()
    if backend == "postgresql" and url.get_driver_name() == "asyncpg":
        settings = dict(args.get("server_settings") or {})
        settings.setdefault("application_name", application_name)
        args["server_settings"] = settings
    elif backend == "mysql":
        args.setdefault("program_name", application_name)
    elif backend == "oracle":
        args.setdefault("program", application_name)
    return args


def _behind_pooler(options: dict[str, Any], mode: str) -> None:
    """Engine options for a transaction pooler: safe connect args, marked, never AUTOCOMMIT."""
    if str(options.get("isolation_level", "")).upper() == "AUTOCOMMIT":
        raise ConfigurationError(
            "isolation_level=AUTOCOMMIT cannot work behind PgBouncer", key="DB_PGBOUNCER"
        )
    options["connect_args"] = pooler_connect_args(options["connect_args"])
    options["execution_options"] = {**(options.get("execution_options") or {}), POOLER_OPTION: mode}


def new_async_engine(
    url: str | URL,
    *,
    echo: bool = False,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
    pool_recycle: int = 1800,
    pool_pre_ping: bool = True,
    pool_ping_after: float = DEFAULT_PING_AFTER,
    slow_query_threshold: float | None = 0.5,
    log_parameters: bool = False,
    application_name: str | None = None,
    pgbouncer: str | None = None,
    metrics_name: str | None = None,
    **kw: Any,
) -> AsyncEngine:
    """Create an :class:`AsyncEngine` with the kit's defaults and events attached.

    orjson is the JSON codec; pool arguments SQLite's pool rejects are dropped;
    ``application_name`` is sent to the server where the driver allows it;
    statements slower than ``slow_query_threshold`` seconds are logged (None: never).
    ``pgbouncer="transaction"``: the server sits behind PgBouncer in transaction pooling
    mode (see :mod:`pkg.database.pgbouncer` for what that changes and why).
    ``pool_pre_ping``: a checkout pings a connection idle longer than ``pool_ping_after``
    seconds (default 5; 0: every checkout), after a failed statement, or whose socket the
    server closed; a connection used moments ago costs no round trip
    (:mod:`pkg.database.liveness`).
    ``metrics_name`` is the ``engine`` label of its metrics (default: ``application_name``,
    else ``default``); server pools are :class:`~pkg.database.pool.KitAsyncQueuePool`
    (waiters, timeouts, queue timing) unless ``poolclass`` is given.
    """
    sa_url = make_url(url)
    pgbouncer = check_mode(sa_url, pgbouncer)
    options: dict[str, Any] = {
        "echo": echo,
        "pool_recycle": pool_recycle,
        "json_serializer": json_dumps,
        "json_deserializer": orjson.loads,  # = utils.json_loads, without a frame per value
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": pool_timeout,
        "hide_parameters": not log_parameters,  # no bound values in errors or echo logs
    }
    if is_memory_sqlite(sa_url):  # one connection holds the database: no queue to size
        for name in _QUEUE_POOL_ARGS:
            options.pop(name)
        options["poolclass"] = StaticPool  # what SQLAlchemy picks, said explicitly
    else:
        options["poolclass"] = KitAsyncQueuePool  # SQLAlchemy's async queue pool, counted
    options.update(kw)
    options["connect_args"] = _connect_args(sa_url, application_name, dict(options.get("connect_args") or {}))
    if pgbouncer is not None:
        _behind_pooler(options, pgbouncer)
    engine = create_async_engine(sa_url, **options)
    if pool_pre_ping:  # the kit's check instead of SQLAlchemy's ping at every checkout
        attach_liveness(engine.sync_engine, pool_ping_after)
    adapt_datetimes(engine.sync_engine.dialect)
    attach_cheap_reset(engine.sync_engine)  # MySQL: no ROLLBACK round trip after a COMMIT/ROLLBACK
    if pgbouncer is not None:
        guard_session_features(engine.sync_engine)
    monitor = attach_query_monitor(engine.sync_engine, slow_query_threshold, log_parameters=log_parameters)
    label = engine_label(metrics_name, strict=True) if metrics_name else engine_label(application_name)
    track_engine(engine.sync_engine, label, monitor)
    register_engine(engine)
    logger.debug("created engine for %s", mask_url(sa_url))
    return engine


def new_async_session_maker(
    engine: AsyncEngine, *, autoflush: bool = True, **kw: Any
) -> async_sessionmaker[AsyncSession]:
    """A session factory bound to ``engine`` with ``expire_on_commit=False``."""
    kw.setdefault("expire_on_commit", False)
    return async_sessionmaker(engine, class_=AsyncSession, autoflush=autoflush, **kw)
