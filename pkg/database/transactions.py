"""Transactions, and how a DAO or builder call finds its session.

``transaction(provider)`` opens one transaction that every DAO call inside joins::

    async with transaction(Session) as session:
        await users.create(...)
        await orders.create(...)               # same session, same COMMIT

The ambient transaction is keyed by database: a call joins the innermost open
``transaction()`` of the same session provider, or of a provider bound to the same
engine. A DAO of another database opens its own session and commits its own writes; a
``transaction()`` of another database nested inside is a new, independent transaction
(of the same database: a SAVEPOINT).

A call with ``session=`` or inside ``transaction()`` joins that transaction (and
flushes after writes). Otherwise :class:`CallSession` opens a short session of its
own: writes COMMIT; reads never do (closing the session rolls the connection back; on
PostgreSQL they run in AUTOCOMMIT, which sends neither BEGIN nor COMMIT; not behind
PgBouncer, where every statement must run inside a transaction). A write that is one
statement (``write(single=True)``: a single-table INSERT, UPDATE ... RETURNING, DELETE)
runs in AUTOCOMMIT there too: atomic on its own, one round trip instead of three.
Where no session could differ (a plain ``async_sessionmaker`` provider, no Session
listeners, no replicas), such own calls skip the ``AsyncSession`` altogether and run on a
bare connection (:meth:`CallSession.direct`, :mod:`pkg.database.direct`).

A joined session is used by one task at a time: a DAO call from a second task while
another is still inside one (``asyncio.gather`` of DAO calls in one ``transaction()``)
raises :class:`~pkg.database.errors.ConcurrentSessionUseError` before any SQL is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pkg.database.direct import direct_engine, read_on
from pkg.database.errors import ConcurrentSessionUseError, translate_error
from pkg.database.query.limits import autocommit_reads, autocommit_writes
from pkg.database.reset import reading
from pkg.database.routing.router import routed
from pkg.database.utils import behind_pooler

__all__ = [
    "CallSession",
    "SessionProvider",
    "ambient_session",
    "execute_transaction",
    "raise_translated",
    "transaction",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

SessionProvider = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Any zero-arg callable returning an async context manager of ``AsyncSession``."""


@dataclass(frozen=True, slots=True)
class _Open:
    """One open outer ``transaction()``: who opened it and its session."""

    provider: SessionProvider
    session: AsyncSession


_open: ContextVar[tuple[_Open, ...]] = ContextVar("pkg_database_transactions", default=())
_USER_KEY = "pkg_database_user"  # session.info: (task using it, nesting depth)


def ambient_session(provider: SessionProvider | None = None) -> AsyncSession | None:
    """The session of the innermost open ``transaction()``, if any.

    With ``provider``: the innermost one that ``provider`` would join (same provider, or a
    session maker bound to the same engine).
    """
    opened = _open.get()
    if provider is None:
        return opened[-1].session if opened else None
    return _match(opened, provider, _provider_engine(provider))


def _engine_key(bind: Any) -> Any:
    """The sync ``Engine`` behind an AsyncEngine / AsyncConnection (identity of a database)."""
    return getattr(bind, "sync_engine", bind)


def _provider_engine(provider: SessionProvider) -> Any:
    """The engine a provider is bound to when that is knowable without calling it, else None."""
    if isinstance(provider, async_sessionmaker):
        bind = provider.kw.get("bind")
        return _engine_key(bind) if bind is not None else None
    return None


def _match(opened: tuple[_Open, ...], provider: SessionProvider, engine: Any) -> AsyncSession | None:
    for entry in reversed(opened):
        if entry.provider is provider:
            return entry.session
        bind = entry.session.bind
        if engine is not None and bind is not None and _engine_key(bind) is engine:
            return entry.session
    return None


@asynccontextmanager
async def _resolve(provider: SessionProvider) -> AsyncIterator[tuple[AsyncSession, bool]]:
    """``(session, joined)``: the open transaction of ``provider``'s database, or a new session.

    A provider whose engine is not knowable up front (a plain function) is called; its
    session, still without a connection, is dropped if it belongs to an open transaction.
    """
    opened = _open.get()
    static = _provider_engine(provider) if opened else None
    found = _match(opened, provider, static) if opened else None
    if found is not None:
        yield found, True
        return
    async with provider() as own:
        if opened and static is None and own.bind is not None:
            found = _match(opened, provider, _engine_key(own.bind))
        yield (found, True) if found is not None else (own, False)


@contextmanager
def _exclusive(session: AsyncSession) -> Iterator[None]:
    """Mark ``session`` as used by the current task; a second task meanwhile is an error."""
    task = asyncio.current_task()
    owner, depth = session.info.get(_USER_KEY, (None, 0))
    if depth and owner is not task:
        raise ConcurrentSessionUseError(
            "one AsyncSession used by two tasks at once (e.g. asyncio.gather of DAO calls in one "
            "transaction() or one request's session); give each task its own session or await "
            "the calls in turn"
        )
    session.info[_USER_KEY] = (task, depth + 1)
    try:
        yield
    finally:
        _, now = session.info.get(_USER_KEY, (None, 1))
        if now > 1:
            session.info[_USER_KEY] = (task, now - 1)
        else:
            session.info.pop(_USER_KEY, None)


def raise_translated(exc: BaseException) -> None:
    """Re-raise ``exc`` as the kit's typed error (cause kept) if it maps to one."""
    translated = translate_error(exc)
    if translated is not exc:
        raise translated from exc


@asynccontextmanager
async def _outer(
    provider: SessionProvider, session: AsyncSession, autoflush: bool
) -> AsyncIterator[AsyncSession]:
    session.sync_session.autoflush = autoflush
    token = _open.set((*_open.get(), _Open(provider, session)))
    try:
        yield session
    except BaseException:
        await session.rollback()
        raise
    else:
        await session.commit()
    finally:
        _open.reset(token)


@asynccontextmanager
async def transaction(provider: SessionProvider, *, autoflush: bool = True) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success, rollback on error; nested use is a SAVEPOINT.

    DAO calls inside the block join its session when they use the same database (same
    provider or same engine); a DAO of another database keeps its own sessions.
    """
    try:
        async with _resolve(provider) as (session, joined):
            if joined:
                async with session.begin_nested():
                    yield session
            else:
                async with _outer(provider, session, autoflush) as outer:
                    yield outer
    except Exception as exc:
        raise_translated(exc)
        raise


async def execute_transaction(
    provider: SessionProvider,
    callback: Callable[[AsyncSession], Any],
    *,
    autoflush: bool = True,
) -> Any:
    """Run ``await callback(session)`` in one transaction and return its result."""
    async with transaction(provider, autoflush=autoflush) as session:
        return await callback(session)


_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


@dataclass(frozen=True, slots=True)
class CallSession:
    """Resolves the session for one DAO or builder call from a session provider."""

    provider: SessionProvider

    def joins(self, session: AsyncSession | None) -> bool:
        """True when a call with ``session`` would (or may) join an existing transaction.

        For a provider whose engine is not knowable without calling it, any open
        ``transaction()`` counts: the caller then assumes it joins (and does not retry).
        """
        if session is not None:
            return True
        opened = _open.get()
        if not opened:
            return False
        engine = _provider_engine(self.provider)
        return engine is None or _match(opened, self.provider, engine) is not None

    def direct(self, session: AsyncSession | None = None) -> AsyncEngine | None:
        """The engine a session-less own read may use (:mod:`pkg.database.direct`), or None
        when the call joins a transaction or the provider's sessions may differ."""
        if session is not None or (_open.get() and self.joins(None)):
            return None
        return direct_engine(self.provider)

    async def read_on(self, work: Callable[[Connection], T], session: AsyncSession | None = None) -> T:
        """``work(connection)`` for a Core read: on a bare connection when :meth:`direct`
        allows (one greenlet hop, :func:`pkg.database.direct.read_on`), else on the read
        session's connection (joined or own)."""
        engine = self.direct(session)
        if engine is not None:
            return await read_on(engine, work)
        async with self.read(session) as s:
            return await s.run_sync(lambda sync: work(sync.connection()))

    @asynccontextmanager
    async def read(
        self, session: AsyncSession | None = None, *, autocommit: bool = True, primary: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A session to read with; never COMMITs.

        Its own session runs in AUTOCOMMIT where that saves round trips (PostgreSQL):
        the same per-statement snapshot as READ COMMITTED, without BEGIN / ROLLBACK.
        With replicas configured, its own session is a routed read session
        (:func:`pkg.database.routing.routed`; ``primary``: never a replica, e.g. FOR UPDATE).
        """
        try:
            if session is not None:
                with _exclusive(session):
                    yield session
                return
            async with _resolve(self.provider) as (s, joined):
                if joined:
                    with _exclusive(s):
                        yield s
                    return
                async with routed(s, primary=primary) as s:  # replicas: pkg.database.routing
                    bind = s.get_bind()  # behind PgBouncer every statement needs a transaction
                    if autocommit and autocommit_reads(bind.dialect.name) and _may_autocommit(bind):
                        await s.connection(execution_options=_AUTOCOMMIT)
                    with reading() if autocommit and not primary else nullcontext():  # MySQL: no BEGIN
                        yield s
        except Exception as exc:
            raise_translated(exc)
            raise

    @asynccontextmanager
    async def write(
        self, session: AsyncSession | None = None, *, single: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A session to write with; flushes when joined, COMMITs when it is its own.

        ``single``: the caller sends exactly one statement. Its own session then runs it in
        AUTOCOMMIT where one statement is atomic and that saves the BEGIN and COMMIT round
        trips (PostgreSQL; not behind PgBouncer, not with flush hooks that may add statements).
        """
        try:
            if session is not None:
                with _exclusive(session):
                    yield session
                    await session.flush()
                return
            async with _resolve(self.provider) as (s, joined):
                with _exclusive(s) if joined else _nothing():
                    if single and not joined:
                        await _autocommit_single(s)
                    yield s
                    await (s.flush() if joined else s.commit())
        except Exception as exc:
            raise_translated(exc)
            raise


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _may_autocommit(bind: Any) -> bool:
    """AUTOCOMMIT needs a connection of our own: not behind PgBouncer, and not a session bound
    to a connection whose transaction is someone else's (``testing.rollback_after``)."""
    return not isinstance(bind, Connection) and not behind_pooler(bind)


async def _autocommit_single(s: AsyncSession) -> None:
    """Put an own session that will send one statement into AUTOCOMMIT, where that is safe."""
    bind = s.get_bind()
    if not autocommit_writes(bind.dialect.name) or not _may_autocommit(bind):
        return
    hooks = s.sync_session.dispatch
    if hooks.before_flush or hooks.after_flush or hooks.after_flush_postexec:
        return  # a flush hook may add statements: keep them in one transaction
    await s.connection(execution_options=_AUTOCOMMIT)
