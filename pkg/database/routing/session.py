"""The read session routing hands out: read-only, on one engine for its whole life.

Every ORM write (INSERT / UPDATE / DELETE statement, or a flush with pending changes)
raises :class:`~pkg.database.errors.ReadOnlySessionError` before any SQL, on a replica and
on the primary alike; a raw SQL write that reaches a standby gets SQLSTATE 25006, mapped
to the same error.

If the session's *first* statement on a replica fails at the connection level (refused,
reset, server shutting down: ``ConnectionLostError``), the replica is marked down and the
session moves to the primary for the rest of its life, retrying that statement once. A
query error is never retried, nor anything after a row was served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from pkg.database.errors import ConnectionLostError, ReadOnlySessionError, translate_error

__all__ = ["ROUTE_KEY", "ReadOnlySyncSession", "RoutedSession", "route_of"]

ROUTE_KEY = "pkg_database_route"  # session.info: "primary" or the replica's name
T = TypeVar("T")


class ReadOnlySyncSession(Session):
    """The sync half of a read session: refuses ORM writes (see the module doc)."""


@event.listens_for(ReadOnlySyncSession, "do_orm_execute")
def _refuse_write_statements(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError("a write in a read session: use the DAO's write methods or transaction()")


@event.listens_for(ReadOnlySyncSession, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySessionError("a flush with changes in a read session: write in transaction()")


def route_of(session: AsyncSession) -> str | None:
    """``"primary"`` or the replica name a routed read session runs on; None if not routed."""
    route = session.info.get(ROUTE_KEY)
    return str(route) if route is not None else None


class RoutedSession(AsyncSession):
    """A read session of a :class:`Router`; moves to the primary once, on a first-statement
    connection failure of its replica."""

    sync_session_class = ReadOnlySyncSession
    router: Any  # the Router that opened it (typed loosely: router.py imports this module)
    replica: Any = None  # its Replica, or None on the primary
    _served = False

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await call()
        except Exception as exc:
            if (
                self._served
                or self.replica is None
                or not isinstance(translate_error(exc), ConnectionLostError)
            ):
                _raise_typed(exc)
            await self._to_primary(exc)
            result = await call()
        self._served = True
        return result

    async def _to_primary(self, exc: BaseException) -> None:
        assert self.replica is not None
        self.replica.health.failed(exc)
        self.router.fallbacks += 1
        await AsyncSession.rollback(self)  # drops the replica's (invalidated) connection
        self.bind = self.router.primary
        self.sync_session.bind = self.router.primary.sync_engine
        self.replica = None
        self.info[ROUTE_KEY] = "primary"

    async def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return await self._guarded(lambda: AsyncSession.execute(self, statement, params, **kw))

    async def scalar(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        return await self._guarded(lambda: AsyncSession.scalar(self, statement, params, **kw))

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        return await self._guarded(lambda: AsyncSession.get(self, entity, ident, **kw))

    async def connection(
        self, bind_arguments: dict[str, Any] | None = None, execution_options: Any = None, **kw: Any
    ) -> AsyncConnection:
        kw.update(bind_arguments=bind_arguments, execution_options=execution_options)
        conn = await self._guarded_connect(kw)
        return conn if self.replica is None else _GuardedConnection(self, conn, kw)  # type: ignore[return-value]

    async def _guarded_connect(self, kw: dict[str, Any]) -> AsyncConnection:
        served, self._served = self._served, False
        try:
            return await self._guarded(lambda: AsyncSession.connection(self, **kw))
        finally:
            self._served = served


class _GuardedConnection:
    """The session's connection on a replica: its statements get the session's one retry."""

    def __init__(self, session: RoutedSession, conn: AsyncConnection, kw: dict[str, Any]) -> None:
        self._session, self._conn, self._kw = session, conn, kw

    async def _run(self, name: str, *args: Any, **kw: Any) -> Any:
        session = self._session

        async def call() -> Any:
            if session.replica is None and self._conn.sync_engine is not session.router.primary.sync_engine:
                self._conn = await AsyncSession.connection(session, **self._kw)
            return await getattr(self._conn, name)(*args, **kw)

        return await session._guarded(call)

    async def execute(self, *args: Any, **kw: Any) -> Any:
        return await self._run("execute", *args, **kw)

    async def exec_driver_sql(self, *args: Any, **kw: Any) -> Any:
        return await self._run("exec_driver_sql", *args, **kw)

    async def scalar(self, *args: Any, **kw: Any) -> Any:
        return await self._run("scalar", *args, **kw)

    async def scalars(self, *args: Any, **kw: Any) -> Any:
        return await self._run("scalars", *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _raise_typed(exc: Exception) -> None:
    """Re-raise ``exc`` as the kit's typed error at once (cause kept), e.g. 25006 on a standby."""
    translated = translate_error(exc)
    if translated is not exc:
        raise translated from exc
    raise exc
