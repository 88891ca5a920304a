"""``QueryBuilder[ModelT]``: a generative query over one model, run through a DAO's sessions.

Every method returns a new builder; the parent never changes::

    active = users.query().filter(is_active=True)
    page = await active.order_by("-created_at").page(1, 50)
    n = await active.filter(email__endswith="@example.com").count()
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    Delete,
    Select,
    Update,
    and_,
    exists,
    func,
    inspect,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy import delete as sa_delete
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.direct import write_on
from pkg.database.errors import (
    MultipleResultsError,
    NotFoundError,
    QueryError,
)
from pkg.database.query.bound import Conditions, StatementCache, bound_lookups
from pkg.database.query.cursors import KeysetCodec
from pkg.database.query.hydrate import Hydrator
from pkg.database.query.limits import MAX_ROWS_ARG, row_count
from pkg.database.query.loading import RAISE_UNLOADED, load_options
from pkg.database.query.lookups import build_lookups, own_table, table_columns
from pkg.database.query.ordering import (
    KeysetSpec,
    SortKey,
    keyset_predicate,
    keyset_spec,
    order_clauses,
    parse_sort,
    with_pk_tiebreaker,
)
from pkg.database.query.pages import KeysetPage, Page
from pkg.database.query.streaming import stream_rows
from pkg.database.query.writes import bound_update, bound_update_values, check_write, update_values
from pkg.database.schemas import SchemaQuery, SchemaT
from pkg.database.transactions import CallSession
from pkg.database.types import utcnow

__all__ = ["MAX_ROWS_ARG", "QueryBuilder", "row_count"]

ModelT = TypeVar("ModelT")
Deleted = Literal["exclude", "include", "only"]


@dataclass(frozen=True, slots=True)
class QueryBuilder(Generic[ModelT]):
    """An immutable query over ``model``; terminals run it (``session=`` joins a transaction)."""

    model: type[ModelT]
    scope: CallSession
    codec: KeysetCodec
    conditions: tuple[ColumnElement[bool], ...] = ()
    sort: tuple[SortKey, ...] = ()
    limit_: int | None = None
    offset_: int | None = None
    deleted: Deleted = "exclude"
    lock: tuple[bool, bool] | None = None
    loader_options: tuple[Any, ...] = field(default=())
    hydrator: Hydrator[ModelT] | None = None  # set: own reads may skip the session (direct.py)
    cache: StatementCache | None = None  # statements by shape, shared by a DAO's builders (bound.py)
    shape: tuple[Any, ...] | None = ()  # of the conditions; None: one has no shape (where(), or_())
    params: tuple[tuple[str, Any], ...] = ()  # the values bound in the shaped conditions
    pending: tuple[Conditions, ...] = ()  # shaped conditions, built only with a statement

    def _replace(self, **changes: Any) -> QueryBuilder[ModelT]:
        """A copy with ``changes`` (a lean ``dataclasses.replace``: this is the hot path)."""
        new = object.__new__(type(self))
        for name in _FIELDS:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        return new

    # -- generative -----------------------------------------------------------------
    def where(self, *expressions: ColumnElement[bool]) -> QueryBuilder[ModelT]:
        """AND SQLAlchemy expressions: ``.where(User.id > 5)``."""
        return self._replace(conditions=(*self._conditions(), *expressions), shape=None, pending=())

    def filter(self, **lookups: Any) -> QueryBuilder[ModelT]:
        """AND Django-style lookups: ``.filter(email__icontains="x", id__in=[1, 2])``."""
        if not lookups:  # no condition: must not count as one (update/delete refuse all rows)
            return self
        if self.shape is not None:  # plain comparisons: named parameters, a cacheable shape
            found = bound_lookups(self.model, lookups, start=len(self.shape))
            if found is not None:
                conditions, params, shape = found
                extra, pending = tuple(params.items()), (*self.pending, conditions)
                return self._replace(shape=self.shape + shape, params=self.params + extra, pending=pending)
        return self.where(*build_lookups(self.model, lookups))

    def or_(self, *groups: ColumnElement[bool] | Mapping[str, Any], **lookups: Any) -> QueryBuilder[ModelT]:
        """AND one OR group: each expression, each dict (ANDed inside) and each lookup is a branch.

        ``.or_(username="ann", email__endswith="@ann.dev")``
        """
        branches: list[ColumnElement[bool]] = []
        for group in groups:
            if isinstance(group, Mapping):
                branches.append(and_(*build_lookups(self.model, group)))
            else:
                branches.append(group)
        branches += [build_lookups(self.model, {k: v})[0] for k, v in lookups.items()]
        if not branches:
            raise QueryError("or_() needs at least one condition")
        return self.where(or_(*branches))

    def order_by(self, *fields: str) -> QueryBuilder[ModelT]:
        """Sort by attribute names, ``-`` for descending: ``.order_by("-created_at", "id")``."""
        return self._replace(sort=self.sort + parse_sort(self.model, fields))

    def limit(self, n: int | None) -> QueryBuilder[ModelT]:
        """At most ``n`` rows (0 to ``MAX_ROWS_ARG``; None: no limit); ``QueryError`` otherwise."""
        return self._replace(limit_=None if n is None else row_count("limit", n, 0))

    def offset(self, n: int | None) -> QueryBuilder[ModelT]:
        """Skip ``n`` rows (0 to ``MAX_ROWS_ARG``; None: none); ``QueryError`` otherwise."""
        return self._replace(offset_=None if n is None else row_count("offset", n, 0))

    def include_deleted(self) -> QueryBuilder[ModelT]:
        """Also see soft-deleted rows."""
        return self._replace(deleted="include")

    def only_deleted(self) -> QueryBuilder[ModelT]:
        """See only soft-deleted rows."""
        return self._replace(deleted="only")

    def for_update(self, *, nowait: bool = False, skip_locked: bool = False) -> QueryBuilder[ModelT]:
        """SELECT ... FOR UPDATE (ignored by SQLite); use inside a transaction."""
        return self._replace(lock=(nowait, skip_locked))

    def options(self, *loader_options: Any) -> QueryBuilder[ModelT]:
        """ORM loader options, e.g. ``selectinload(User.orders)``."""
        return self._replace(loader_options=self.loader_options + loader_options)

    def load(self, *paths: str, strategy: str = "selectin") -> QueryBuilder[ModelT]:
        """Eager-load relations by dotted name: ``.load("orders", "orders.items")`` (selectin:
        one statement per level; ``strategy="joined"``: a JOIN). See ``query/loading.py``."""
        return self.options(*load_options(self.model, paths, strategy))

    def as_schema(self, schema: type[SchemaT]) -> SchemaQuery[SchemaT]:
        """Rows as ``schema`` instances (pydantic), selecting only its fields' columns."""
        return SchemaQuery(self, schema)

    # -- statement building ---------------------------------------------------------
    def _conditions(self) -> list[ColumnElement[bool]]:
        """Every condition, the shaped ones built now (a cached statement needs none)."""
        return [*self.conditions, *(e for build in self.pending for e in build())]

    def _criteria(self) -> list[ColumnElement[bool]]:
        criteria = self._conditions()
        column = table_columns(self.model).get("deleted_at")
        if column is not None and self.deleted != "include":
            criteria.append(column.is_(None) if self.deleted == "exclude" else column.is_not(None))
        return criteria

    def _apply(self, stmt: Select[Any], sort: tuple[SortKey, ...]) -> Select[Any]:
        stmt = stmt.where(*self._criteria())
        if sort:
            stmt = stmt.order_by(*order_clauses(self.model, sort))
        if self.limit_ is not None:
            stmt = stmt.limit(self.limit_)
        if self.offset_ is not None:
            stmt = stmt.offset(self.offset_)
        if self.lock is not None:
            stmt = stmt.with_for_update(nowait=self.lock[0], skip_locked=self.lock[1])
        return stmt

    def statement(self) -> Select[ModelT]:
        """The ORM SELECT this builder runs for ``all()``."""
        stmt = self._apply(select(self.model), self.sort)  # unloaded relations raise on access
        return stmt.options(*self.loader_options, RAISE_UNLOADED)

    def _table_columns(self) -> Select[Any]:
        return self._apply(select(inspect(self.model).local_table), self.sort)

    def count_statement(self) -> Select[int]:
        if self.limit_ is None and self.offset_ is None:
            return select(func.count()).select_from(own_table(self.model)).where(*self._criteria())
        inner = self._apply(select(literal(1).label("one")).select_from(own_table(self.model)), ())
        return select(func.count()).select_from(inner.subquery())

    def exists_statement(self) -> Select[int]:
        """``SELECT 1 WHERE EXISTS (...)``: valid on every dialect, Oracle included."""
        inner = exists().select_from(own_table(self.model)).where(*self._criteria())
        return select(literal_column("1")).where(inner)

    def page_query(self, page: int, size: int) -> QueryBuilder[ModelT]:
        """The builder for offset page ``page``: PK tiebreaker appended, LIMIT/OFFSET set."""
        page, size = row_count("page", page, 1), row_count("size", size, 1)
        if (page - 1) * size > MAX_ROWS_ARG:
            raise QueryError(f"page * size must stay within {MAX_ROWS_ARG} rows")
        sort = with_pk_tiebreaker(self.model, self.sort)
        return self._replace(sort=sort, limit_=size, offset_=(page - 1) * size)

    def keyset_query(self, size: int, after: str | None = None) -> tuple[QueryBuilder[ModelT], Any]:
        """The builder fetching ``size + 1`` rows after ``after``, and a cursor maker."""
        size = row_count("size", size, 1, MAX_ROWS_ARG - 1)  # one more row is fetched
        sort, spec, types = self._keyset_spec()
        query = self._replace(sort=sort, limit_=size + 1, offset_=None)
        if after is not None:
            values = self.codec.decode(spec, after, types)
            model = self.model

            def predicate() -> list[ColumnElement[bool]]:
                return [keyset_predicate(model, sort, values, bind="k")]

            shape = None if query.shape is None else (*query.shape, ("keyset", spec))
            bound = tuple((f"k{i}", v) for i, v in enumerate(values))
            query = query._replace(
                shape=shape, params=query.params + bound, pending=(*query.pending, predicate)
            )

        def cursor_for(row: Any) -> str:
            return self.codec.encode(spec, [getattr(row, k.name) for k in sort])

        return query, cursor_for

    # -- reads ----------------------------------------------------------------------
    def _direct(self, session: AsyncSession | None) -> bool:
        """True when this read may run on a bare connection (:mod:`pkg.database.direct`)."""
        plain = self.hydrator is not None and self.hydrator.plain
        return (
            plain and not self.loader_options and self.lock is None and self.scope.direct(session) is not None
        )

    def _instances(self, conn: Connection) -> list[ModelT]:
        assert self.hydrator is not None
        hydrator = self.hydrator
        stmt, params = self._cached("rows", lambda: self._apply(hydrator.select(), self.sort))
        return hydrator.instances(conn.execute(stmt, params).all())

    def _cached(self, kind: Hashable, build: Callable[[], Any]) -> tuple[Any, dict[str, Any] | None]:
        """``(statement, parameters)``: the DAO's statement of this shape with this builder's
        values, or a fresh one (no shape, no cache, or loader options)."""
        if self.cache is None or self.shape is None or self.loader_options:
            return build(), None
        key = (kind, self.shape, self.sort, self.limit_, self.offset_, self.deleted, self.lock)
        return self.cache.get(key, build), dict(self.params)

    async def all(self, *, session: AsyncSession | None = None) -> list[ModelT]:
        if self._direct(session):
            return await self.scope.read_on(self._instances)
        async with self.scope.read(session, primary=self.lock is not None) as s:  # FOR UPDATE: primary
            result = await s.scalars(self.statement())
            return list((result.unique() if self.loader_options else result).all())  # joined loads

    async def first(self, *, session: AsyncSession | None = None) -> ModelT | None:
        """The first row (LIMIT 1), or None."""
        rows = await self.limit(1).all(session=session)
        return rows[0] if rows else None

    async def one_or_none(self, *, session: AsyncSession | None = None) -> ModelT | None:
        """The only row, or None; ``MultipleResultsError`` if there are more."""
        rows = await self.limit(2).all(session=session)
        if len(rows) > 1:
            raise MultipleResultsError(f"more than one {self.model.__name__} matched")
        return rows[0] if rows else None

    async def one(self, *, session: AsyncSession | None = None) -> ModelT:
        """The only row; ``NotFoundError`` if none, ``MultipleResultsError`` if more."""
        row = await self.one_or_none(session=session)
        if row is None:
            raise NotFoundError(f"no {self.model.__name__} matched")
        return row

    async def count(self, *, session: AsyncSession | None = None) -> int:
        stmt, params = self._cached("count", self.count_statement)
        return await self.scope.read_on(lambda conn: int(conn.execute(stmt, params).scalar_one()), session)

    async def exists(self, *, session: AsyncSession | None = None) -> bool:
        """``SELECT 1 WHERE EXISTS (...)``: no row is fetched."""
        stmt, params = self._cached("exists", self.exists_statement)
        return await self.scope.read_on(lambda conn: conn.execute(stmt, params).first() is not None, session)

    async def dicts(self, *, session: AsyncSession | None = None) -> list[dict[str, Any]]:
        """Rows as plain dicts keyed by column name (Core speed, no identity map)."""
        stmt, params = self._cached("dicts", self._table_columns)

        def work(conn: Connection) -> list[dict[str, Any]]:
            result = conn.execute(stmt, params)
            keys = tuple(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result]

        return await self.scope.read_on(work, session)

    def stream(self, *, chunk_size: int = 1000, session: AsyncSession | None = None) -> AsyncIterator[ModelT]:
        """Iterate a large result in chunks of ``chunk_size`` rows, one query per chunk
        (keyset-ordered; no connection held between chunks: see ``query/streaming.py``)."""
        return stream_rows(self, chunk_size, session)

    async def page(
        self, page: int = 1, size: int = 50, *, session: AsyncSession | None = None
    ) -> Page[ModelT]:
        """Offset page ``page`` (1-based) of ``size`` rows, PK-tiebroken, with the total."""
        paged = self.page_query(page, size)
        if self._direct(session):  # one bare connection for the count and the rows
            stmt, params = self._cached("count", self.count_statement)

            def work(conn: Connection) -> tuple[int, list[ModelT]]:
                total = int(conn.execute(stmt, params).scalar_one())
                return total, paged._instances(conn) if total > (page - 1) * size else []

            total, items = await self.scope.read_on(work)
            return Page(items=items, total=total, page=page, size=size)
        async with self.scope.read(session) as s:
            total = await self.count(session=s)
            items = await paged.all(session=s) if total > (page - 1) * size else []
        return Page(items=items, total=total, page=page, size=size)

    def _keyset_spec(self) -> KeysetSpec:
        """The keyset sort, cursor spec and value types (``ordering.keyset_spec``), per DAO and sort."""
        build = functools.partial(keyset_spec, self.model, self.sort)
        return build() if self.cache is None else self.cache.get(("keyset", self.sort), build)

    async def keyset(
        self, size: int = 50, after: str | None = None, *, session: AsyncSession | None = None
    ) -> KeysetPage[ModelT]:
        """The ``size`` rows after cursor ``after``; ``next_cursor`` is None on the last page."""
        query, cursor_for = self.keyset_query(size, after)
        rows = await query.all(session=session)
        if len(rows) <= size:
            return KeysetPage(items=rows, next_cursor=None)
        return KeysetPage(items=rows[:size], next_cursor=cursor_for(rows[size - 1]))

    # -- writes ---------------------------------------------------------------------
    def update_statement(self, values: Mapping[str, Any]) -> Update:
        """The UPDATE ``update(**values)`` runs: checked values plus timestamps and version."""
        return sa_update(self.model).where(*self._criteria()).values(update_values(self.model, values))

    def delete_statement(self) -> Delete:
        """The DELETE ``delete()`` runs."""
        return sa_delete(self.model).where(*self._criteria())

    async def update(
        self, *, allow_all: bool = False, session: AsyncSession | None = None, **values: Any
    ) -> int:
        """UPDATE the matching rows; returns the rowcount. Keeps timestamps and version."""
        return await self._rowcount(allow_all, session, values)

    async def delete(self, *, allow_all: bool = False, session: AsyncSession | None = None) -> int:
        """DELETE the matching rows (a hard delete); returns the rowcount."""
        return await self._rowcount(allow_all, session)

    async def _rowcount(self, allow_all: bool, session: AsyncSession | None, values: Any = None) -> int:
        """UPDATE of ``values`` (None: DELETE); own on a plain mapper: alone on a bare connection."""
        check_write(self.model, allow_all, bool(self.conditions or self.pending), (self.limit_, self.offset_))
        if self.hydrator is not None and self.hydrator.plain and (engine := self.scope.direct(session)):
            stmt, params = self._bound_write(values)
            return await write_on(engine, lambda conn: int(conn.execute(stmt, params).rowcount))
        orm = self.delete_statement() if values is None else self.update_statement(values)
        async with self.scope.write(session, single=True) as s:
            result = await s.execute(orm.execution_options(synchronize_session="fetch"))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def _bound_write(self, values: Mapping[str, Any] | None) -> tuple[Any, dict[str, Any] | None]:
        """The own UPDATE of ``values`` (None: the DELETE) and its parameters, cached per shape."""
        if values is None:
            return self._cached("delete", self.delete_statement)
        bound = bound_update_values(self.model, values, [k for k, _ in self.params])  # checks the fields
        if bound is None:
            return self.update_statement(values), None
        stmt, conditions = self._cached(
            ("update", bound[0]), functools.partial(bound_update, self.model, bound[0], self._criteria)
        )
        return stmt, {**(conditions or {}), **bound[1]}

    async def soft_delete(self, *, allow_all: bool = False, session: AsyncSession | None = None) -> int:
        """Set ``deleted_at`` on the matching live rows; returns the rowcount."""
        if not hasattr(self.model, "deleted_at"):
            raise QueryError(f"{self.model.__name__} has no SoftDeleteMixin")
        live = self._replace(deleted="exclude")
        return await live.update(allow_all=allow_all, session=session, deleted_at=utcnow())


_FIELDS = tuple(f.name for f in dataclasses.fields(QueryBuilder))
