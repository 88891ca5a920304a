"""Pre-ping that costs nothing on a hot connection.

SQLAlchemy's ``pool_pre_ping`` sends a round trip (on asyncpg three: BEGIN, ``;``,
ROLLBACK) at *every* checkout, about 40 % of a primary-key read. The kit's engines keep
the promise of pre-ping (a restarted server or a killed backend is invisible to the next
request) with a pool ``checkout`` listener that pings only a connection that may be dead:

* one idle longer than ``ping_after`` seconds (default :data:`DEFAULT_PING_AFTER`; 0 pings
  at every checkout, like SQLAlchemy): firewalls, NAT and server timeouts drop idle ones;
* one whose last statement failed (``handle_error``): the error may have broken it;
* one whose socket the server (or PgBouncer) already closed or wrote to while it sat in
  the pool (a restart, ``pg_terminate_backend``, ``KILL``): the driver saw the EOF (asyncpg
  ``is_closed()``, the aiomysql/asyncmy stream at EOF), or the socket is readable right now
  (a zero-timeout ``poll``: the EOF arrived while the event loop was blocked). No round
  trip; drivers without a socket rely on the idle threshold.

A failed ping replaces that connection and every older one (SQLAlchemy's own pre-ping
behaviour: ``InvalidatePoolError``), then the checkout retries on a new connection.
A connection used moments ago that dies without the server closing its socket (a
network partition) surfaces on its next statement as ``ConnectionLostError``.

Example::

    attach_liveness(engine.sync_engine, ping_after=5.0)   # new_async_engine does this
"""

from __future__ import annotations

import logging
import select
from time import monotonic
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.pool import ConnectionPoolEntry

from pkg.database.errors import ConfigurationError

__all__ = ["DEFAULT_PING_AFTER", "Liveness", "attach_liveness", "may_be_dead"]

logger = logging.getLogger(__name__)

DEFAULT_PING_AFTER = 5.0  # seconds idle after which a checkout pings first
_USED = "pkg_database_used"  # record.info: monotonic time the connection was last known good


def _transport(driver_connection: Any) -> Any:
    """The asyncio transport of an asyncpg / aiomysql / asyncmy connection, else None."""
    transport = getattr(driver_connection, "_transport", None)  # asyncpg
    if transport is None:
        writer = getattr(driver_connection, "_writer", None)  # aiomysql, asyncmy
        transport = getattr(writer, "transport", None)
    return transport


def _readable(transport: Any) -> bool:
    """Whether an idle connection's socket has bytes or an EOF waiting (zero-timeout poll)."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    fileno = sock.fileno() if sock is not None else -1
    if fileno < 0:
        return transport is not None  # closed transport: dead
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def may_be_dead(driver_connection: Any) -> bool:
    """Whether an idle pooled connection may be dead, known without any round trip.

    The driver already saw the server close it (asyncpg ``is_closed()``, the aiomysql /
    asyncmy stream at EOF), or its socket is readable: an idle connection has nothing to
    read unless the server closed it or sent an error. Other drivers (SQLite): False.
    """
    is_closed = getattr(driver_connection, "is_closed", None)
    if callable(is_closed) and is_closed():
        return True
    reader = getattr(driver_connection, "_reader", None)
    at_eof = getattr(reader, "at_eof", None)
    if callable(at_eof) and at_eof():
        return True
    transport = _transport(driver_connection)
    return transport is not None and _readable(transport)


class Liveness:
    """The pool listeners of one engine: stamp on connect/checkin, ping stale on checkout."""

    def __init__(self, engine: Engine, ping_after: float) -> None:
        self.dialect = engine.dialect
        self.ping_after = ping_after
        self.pings = 0  # round trips spent on liveness (for tests and tuning)

    def on_connect(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_USED] = monotonic()

    def on_checkin(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None and _USED in record.info:  # not after an error
            record.info[_USED] = monotonic()

    def on_checkout(self, dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        used = record.info.get(_USED)
        if (
            used is not None
            and monotonic() - used < self.ping_after
            and not may_be_dead(record.driver_connection)
        ):
            return
        self.pings += 1
        if not self.dialect._do_ping_w_event(dbapi_connection):
            logger.info("pre-ping found a dead connection; replacing it and older ones")
            raise sa_exc.InvalidatePoolError()  # SQLAlchemy then checks out a new one
        record.info[_USED] = monotonic()

    def on_error(self, context: ExceptionContext) -> None:
        """A failed statement: ping its connection at the next checkout."""
        conn = context.connection
        fairy = getattr(conn, "_dbapi_connection", None) if conn is not None else None
        record = getattr(fairy, "_connection_record", None)
        if record is not None:
            record.info.pop(_USED, None)


def attach_liveness(engine: Engine, ping_after: float = DEFAULT_PING_AFTER) -> Liveness:
    """Attach the listeners to ``engine`` (sync) whose pool has SQLAlchemy's pre-ping off.

    The checkout listener goes first, so leak tracking and metrics see the connection
    that is finally handed out.
    """
    if isinstance(ping_after, bool) or not isinstance(ping_after, int | float) or not ping_after >= 0:
        message = f"pool_ping_after must be >= 0 seconds, not {ping_after!r}"
        raise ConfigurationError(message, key="pool_ping_after")
    live = Liveness(engine, ping_after)
    event.listen(engine, "connect", live.on_connect)
    event.listen(engine, "checkin", live.on_checkin)
    event.listen(engine, "checkout", live.on_checkout, insert=True)
    event.listen(engine, "handle_error", live.on_error)
    return live
