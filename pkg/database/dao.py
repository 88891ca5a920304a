"""``BaseDao[ModelT]``: the data-access object a team subclasses per model.

Example::

    class UserDao(BaseDao[User]):
        model_cls = User

    users = UserDao(session_provider=get_session)
    user = await users.create(username="ann", email="ann@example.com")
    page = await users.query().filter(is_active=True).order_by("-created_at").page(1, 50)

Every method takes ``session=`` to join a caller's transaction, joins the ambient
``transaction()`` when one is open, and otherwise runs in a short transaction of its
own (writes COMMIT, reads never do). Errors are the kit's typed errors, cause kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Table, inspect, select
from sqlalchemy import delete as sa_delete
from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.actor import current_actor
from pkg.database.errors import (
    ConcurrencyConflictError,
    ConfigurationError,
    NotFoundError,
    QueryError,
    StaleDataError,
)
from pkg.database.query.bound import StatementCache
from pkg.database.query.builder import QueryBuilder
from pkg.database.query.bulk import bulk_rows, insert_bulk
from pkg.database.query.cursors import KeysetCodec
from pkg.database.query.hydrate import Hydrator
from pkg.database.query.limits import rows_per_statement
from pkg.database.query.loading import RAISE_UNLOADED, load_options
from pkg.database.query.single import NOT_APPLICABLE, SingleRows
from pkg.database.query.upsert import UpsertPlan, build_upsert, check_conflict_target, fill_defaults
from pkg.database.query.writes import check_fields, one_statement_flush, returning_update
from pkg.database.retry import execute_transaction
from pkg.database.schemas import SchemaLike, schema_values
from pkg.database.transactions import CallSession, SessionProvider, transaction
from pkg.database.types import utcnow

__all__ = ["BaseDao"]

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT")
_UPSERT_ATTEMPTS = 3
_NOT_UPDATED = frozenset({"created_at", "creator_id", "deleted_at"})


class BaseDao(Generic[ModelT]):
    """Async CRUD, bulk, upsert and query access to ``model_cls``."""

    model_cls: ClassVar[type[Any]]
    default_loads: ClassVar[tuple[str, ...]] = ()  # relations every query()/get() loads: ("orders",)

    def __init__(
        self, session_provider: SessionProvider, *, cursor_secret: str | bytes | None = None
    ) -> None:
        if getattr(self, "model_cls", None) is None:
            raise ConfigurationError(f"{type(self).__name__} must set model_cls", key="model_cls")
        self.session_provider = session_provider
        self._scope = CallSession(session_provider)
        self._codec = KeysetCodec(cursor_secret)
        mapper = inspect(self.model_cls)
        self._table: Table = mapper.local_table
        self._pk = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
        self._soft = "deleted_at" in mapper.column_attrs
        self._versioned = mapper.version_id_col is not None
        if mapper.version_id_col is not None:
            self._version_key = mapper.get_property_by_column(mapper.version_id_col).key
        self._loads = load_options(self.model_cls, self.default_loads)  # checked here, once
        self._get_options = (*self._loads, RAISE_UNLOADED)
        self._hydrator: Hydrator[ModelT] = Hydrator(self.model_cls)
        self._rows = SingleRows(self.model_cls, self._hydrator)  # own calls: no session (direct.py)
        self._statements = StatementCache()  # the builders' statements by shape (query/bound.py)

    def _direct(self, session: AsyncSession | None) -> Any:
        """The engine this call may use without a session, or None (``pkg/database/direct.py``)."""
        return None if self._loads else self._scope.direct(session)

    # -- queries and transactions ---------------------------------------------------
    def query(self) -> QueryBuilder[ModelT]:
        """A new builder over ``model_cls`` (soft-deleted rows excluded, ``default_loads`` loaded)."""
        return QueryBuilder(
            self.model_cls,
            self._scope,
            self._codec,
            loader_options=self._loads,
            hydrator=self._hydrator,
            cache=self._statements,
        )

    def transaction(self, *, autoflush: bool = True) -> AbstractAsyncContextManager[AsyncSession]:
        """``async with dao.transaction() as session:`` commit on success, rollback on error."""
        return transaction(self.session_provider, autoflush=autoflush)

    async def execute_transaction(
        self, callback: Callable[[AsyncSession], Any], autoflush: bool = True, *, retries: int = 0
    ) -> Any:
        """Run ``await callback(session)`` in one transaction; return its result. ``retries``:
        rerun it on conflicts / lost connections (``pkg/database/retry.py``)."""
        provider = self.session_provider
        return await execute_transaction(provider, callback, autoflush=autoflush, retries=retries)

    # -- single rows ----------------------------------------------------------------
    def _pk_filter(self, pk: Any) -> dict[str, Any]:
        values = pk if isinstance(pk, tuple) else (pk,)
        if len(values) != len(self._pk):
            raise QueryError(f"{self.model_cls.__name__} primary key has {len(self._pk)} columns")
        return dict(zip(self._pk, values, strict=True))

    def _pk_values(self, pk: Any) -> tuple[Any, ...]:
        return tuple(self._pk_filter(pk).values())

    def _by_pk(self, pk: Any, include_deleted: bool = False) -> QueryBuilder[ModelT]:
        builder = self.query().filter(**self._pk_filter(pk))
        return builder.include_deleted() if include_deleted else builder

    async def create(
        self, schema: SchemaLike | None = None, /, *, session: AsyncSession | None = None, **values: Any
    ) -> ModelT:
        """INSERT one row (from ``schema``, a pydantic model, and/or ``values``); returns the
        persisted instance with its primary key set."""
        values = {**schema_values(schema, partial=False), **values}
        check_fields(self.model_cls, values)
        engine = self._direct(session)
        if engine is not None:
            fresh = self._hydrator.fresh(values)  # no per-attribute events where none listen
            made = await self._rows.create(engine, self.model_cls(**values) if fresh is None else fresh)
            if made is not NOT_APPLICABLE:
                return made  # type: ignore[return-value]
        obj = self.model_cls(**values)
        single = one_statement_flush(self.model_cls)  # own session: AUTOCOMMIT where atomic
        async with self._scope.write(session, single=single) as s:  # flushes (joined) or commits (own)
            s.add(obj)
        return obj  # type: ignore[no-any-return]

    async def get(
        self, pk: Any, *, include_deleted: bool = False, session: AsyncSession | None = None
    ) -> ModelT | None:
        """The row with primary key ``pk``, or None (soft-deleted rows count as absent)."""
        engine = self._direct(session)
        found = await self._rows.get(engine, self._pk_values(pk)) if engine is not None else NOT_APPLICABLE
        if found is NOT_APPLICABLE:
            async with self._scope.read(session) as s:
                found = await s.get(self.model_cls, pk, options=self._get_options)
        obj: Any = found
        if obj is not None and self._soft and not include_deleted and obj.deleted_at is not None:
            return None
        return obj  # type: ignore[no-any-return]

    async def get_or_raise(
        self, pk: Any, *, include_deleted: bool = False, session: AsyncSession | None = None
    ) -> ModelT:
        """Like ``get`` but raises ``NotFoundError``."""
        obj = await self.get(pk, include_deleted=include_deleted, session=session)
        if obj is None:
            raise NotFoundError(f"{self.model_cls.__name__} {pk!r} not found")
        return obj

    async def get_many(self, pks: Iterable[Any], *, session: AsyncSession | None = None) -> list[ModelT]:
        """Rows for ``pks`` in the given order, missing ones skipped; one statement, any count.

        The ``in`` lookup sends a long list in the dialect's long-IN form (see ``query/limits.py``).
        """
        if len(self._pk) != 1:
            raise QueryError("get_many needs a single-column primary key")
        wanted = list(dict.fromkeys(pks))
        rows = await self.query().filter(**{f"{self._pk[0]}__in": wanted}).all(session=session)
        found: dict[Any, ModelT] = {getattr(r, self._pk[0]): r for r in rows}
        return [found[pk] for pk in wanted if pk in found]

    async def update_by_id(
        self,
        pk: Any,
        schema: SchemaLike | None = None,
        /,
        *,
        partial: bool = True,
        session: AsyncSession | None = None,
        **values: Any,
    ) -> ModelT:
        """Load, change and flush one row (version-checked).

        ``schema`` (pydantic): only the fields the client set (``partial=False``: every field).
        ``NotFoundError`` if absent; ``StaleDataError`` if ``version=`` is given and
        differs from the stored one, or a concurrent writer got there first.
        """
        values = {**schema_values(schema, partial=partial), **values}
        check_fields(self.model_cls, values)
        expected = values.pop("version", None) if self._versioned else None
        if values and not self._scope.joins(session):
            found = await self._update_returning(pk, expected, values)
            if found is not None:
                return found
        async with self._scope.write(session) as s:
            obj = await self.get_or_raise(pk, session=s)
            if expected is not None and obj.version != expected:  # type: ignore[attr-defined]
                raise StaleDataError(f"{self.model_cls.__name__} {pk!r} is at another version")
            for key, value in values.items():
                setattr(obj, key, value)
        return obj

    async def _update_returning(self, pk: Any, expected: Any, values: dict[str, Any]) -> ModelT | None:
        """``update_by_id`` in its own session as one UPDATE ... RETURNING (AUTOCOMMIT on
        PostgreSQL: one round trip); None when that does not apply or changed no row (absent,
        stale or unchanged: the caller's load-change-flush path then tells which)."""
        keys = self._pk_filter(pk)
        if expected is not None:
            keys[self._version_key] = expected
        engine = self._direct(None)
        if engine is not None:
            found = await self._rows.update(engine, self._pk_values(pk), expected, values, live=self._soft)
            if found is not NOT_APPLICABLE:
                return found  # type: ignore[return-value]
        async with self._scope.write(single=True) as s:
            stmt = returning_update(self.model_cls, keys, values, s.get_bind().dialect, live=self._soft)
            if stmt is None:
                return None
            return (await s.scalars(stmt)).one_or_none()

    async def delete_by_id(self, pk: Any, *, session: AsyncSession | None = None) -> bool:
        """Hard-DELETE one row; True if it existed."""
        engine = self._direct(session)
        if (
            engine is not None
            and (gone := await self._rows.delete(engine, self._pk_values(pk))) is not NOT_APPLICABLE
        ):
            return bool(gone)
        stmt = sa_delete(self.model_cls).filter_by(**self._pk_filter(pk))
        async with self._scope.write(session, single=True) as s:
            result = await s.execute(stmt)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def soft_delete_by_id(self, pk: Any, *, session: AsyncSession | None = None) -> bool:
        """Set ``deleted_at`` on one live row; True if it was live."""
        return bool(await self._by_pk(pk).soft_delete(session=session))

    async def restore_by_id(self, pk: Any, *, session: AsyncSession | None = None) -> bool:
        """Clear ``deleted_at`` on one soft-deleted row; True if it was deleted."""
        if not self._soft:
            raise QueryError(f"{self.model_cls.__name__} has no SoftDeleteMixin")
        return bool(await self._by_pk(pk).only_deleted().update(session=session, deleted_at=None))

    async def count(self, *, session: AsyncSession | None = None, **lookups: Any) -> int:
        """Rows matching ``lookups`` (``field__op=value``, as ``query().filter``)."""
        return await self.query().filter(**lookups).count(session=session)

    async def exists(self, *, session: AsyncSession | None = None, **lookups: Any) -> bool:
        """Whether a row matches ``lookups`` (no row is fetched)."""
        return await self.query().filter(**lookups).exists(session=session)

    # -- bulk -------------------------------------------------------------------------
    def _column_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        mapper = inspect(self.model_cls)
        keys: dict[str, str] = {}
        out = []
        for row in rows:
            for name in row:
                if name not in keys:
                    check_fields(self.model_cls, [name])
                    keys[name] = mapper.column_attrs[name].columns[0].key
            out.append({keys[k]: v for k, v in row.items()})
        return out

    async def create_many(
        self, rows: Iterable[Mapping[str, Any]], *, session: AsyncSession | None = None
    ) -> int:
        """Bulk INSERT (executemany; ``pkg/database/query/bulk.py``); returns rows inserted."""
        bulk = bulk_rows(self.model_cls, rows)  # fields checked before any SQL
        if not bulk.count:
            return 0
        async with self._scope.write(session) as s:
            await insert_bulk(s, self._table, bulk)
        return bulk.count

    def _target(self, conflict_on: Sequence[str]) -> tuple[str, ...]:
        keys = list(self._column_rows([dict.fromkeys(conflict_on)])[0])
        return check_conflict_target(self._table, keys)

    def _upsert_plan(self, keys: Sequence[str], conflict_on: Sequence[str]) -> UpsertPlan:
        target = self._target(conflict_on)
        skip = set(target) | _NOT_UPDATED | {"updated_at", "updater_id", "version"} | set(self._pk)
        assign: dict[str, Any] = {}
        if "updated_at" in self._table.c:
            assign["updated_at"] = utcnow()
        if "updater_id" in self._table.c:
            assign["updater_id"] = current_actor()
        increment = ("version",) if self._versioned else ()
        return UpsertPlan(target, tuple(k for k in keys if k not in skip), assign, increment)

    async def _upsert_chunks(
        self, data: list[dict[str, Any]], conflict_on: Sequence[str], s: AsyncSession
    ) -> None:
        plan = self._upsert_plan(list(data[0]), conflict_on)
        dialect = s.get_bind().dialect
        step = rows_per_statement(dialect.name, len(data[0]))
        for i in range(0, len(data), step):
            await s.execute(build_upsert(dialect, self._table, data[i : i + step], plan))

    async def upsert_many(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        conflict_on: Sequence[str],
        session: AsyncSession | None = None,
    ) -> int:
        """INSERT or UPDATE each row by the unique key ``conflict_on``; one statement per chunk.

        Returns the number of input rows (the last one wins for repeated keys).
        """
        data = fill_defaults(self._table, self._column_rows(rows))
        if not data:
            return 0
        target = self._target(conflict_on)
        data = list({tuple(r.get(k) for k in target): r for r in data}.values())
        await self._retrying(lambda s: self._upsert_chunks(data, target, s), session)
        return len(data)

    async def upsert(
        self, values: Mapping[str, Any], *, conflict_on: Sequence[str], session: AsyncSession | None = None
    ) -> ModelT:
        """INSERT or UPDATE one row by the unique key ``conflict_on``; returns it, fresh."""
        data = fill_defaults(self._table, self._column_rows([values]))
        target = self._target(conflict_on)
        missing = [k for k in target if k not in data[0]]
        if missing:
            raise QueryError(f"upsert values lack the conflict column(s) {missing}")
        key = {k: data[0][k] for k in target}

        async def run(s: AsyncSession) -> ModelT:
            await self._upsert_chunks(data, target, s)
            stmt = select(self.model_cls).filter_by(**key).execution_options(populate_existing=True)
            return (await s.scalars(stmt)).one()  # type: ignore[no-any-return]

        return await self._retrying(run, session)  # type: ignore[no-any-return]

    async def _retrying(self, work: Callable[[AsyncSession], Any], session: AsyncSession | None) -> Any:
        """Run ``work`` in a write scope; retry a deadlock only when the transaction is ours."""
        for attempt in range(1, _UPSERT_ATTEMPTS + 1):
            try:
                async with self._scope.write(session) as s:
                    return await work(s)
            except ConcurrencyConflictError:
                if self._scope.joins(session) or attempt == _UPSERT_ATTEMPTS:
                    raise
                logger.info("upsert on %s hit a deadlock; retry %d", self._table.name, attempt)
        raise AssertionError("unreachable")
