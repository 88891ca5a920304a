"""One-row DAO statements on a bare connection: get, create, update and delete by primary key.

Used by :class:`~pkg.database.dao.BaseDao` when its call runs on its own (no ``session=``,
no ``transaction()``) and :func:`pkg.database.direct.direct_engine` allows it. Each method
returns :data:`NOT_APPLICABLE` where only the ORM path gives the same result (a non-plain
mapper, a database without ``INSERT ... RETURNING``, a SQL expression as a value, a column
the database compares differently); the DAO then runs its session path. Statements are
built once per DAO, so each call only binds parameters::

    rows = SingleRows(User)
    user = await rows.get(engine, (5,))          # detached User or None
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import Delete, Select, Update, bindparam, delete, insert, inspect, or_, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.direct import read_on, write_on
from pkg.database.query.hydrate import Hydrator
from pkg.database.query.writes import STAMPS, update_guard

__all__ = ["NOT_APPLICABLE", "SingleRows"]

ModelT = TypeVar("ModelT")
_TEMPLATES = 64  # UPDATE shapes kept per DAO


class _NotApplicable:
    def __repr__(self) -> str:
        return "NOT_APPLICABLE"


NOT_APPLICABLE: Final = _NotApplicable()


class SingleRows(Generic[ModelT]):
    """Prebuilt one-row statements of ``model`` and their session-less execution."""

    def __init__(self, model: type[ModelT], hydrator: Hydrator[ModelT]) -> None:
        self.model = model
        self.hydrator = hydrator
        mapper = inspect(model)
        table = mapper.local_table
        by_pk = [c == bindparam(f"pk{i}") for i, c in enumerate(mapper.primary_key)]
        self._get: Select[Any] | None = hydrator.select().where(*by_pk) if hydrator.plain else None
        self._delete: Delete = delete(table).where(*by_pk)
        # only the generated key to fetch: plain INSERT, the dialect's own way to the key (the
        # driver's last row id on MariaDB and SQLite, RETURNING on PostgreSQL); else RETURNING
        made = hydrator.fetched
        self._key_only = len(made) == 1 and made[0] is table.autoincrement_column  # `is`: columns' == is SQL
        returned = insert(table) if self._key_only else insert(table).returning(*hydrator.fetched)
        self._insert = returned if hydrator.inserts else None
        self._stamps = frozenset(STAMPS) & set(mapper.column_attrs.keys())  # set on every UPDATE
        self._updates: dict[tuple[Any, ...], Update] = {}  # guarded UPDATE per shape of values
        self._loaded_updates = _version_key(mapper) if hydrator.plain else None  # see _update_loaded

    @staticmethod
    def _params(pk: Sequence[Any]) -> dict[str, Any]:
        return {f"pk{i}": value for i, value in enumerate(pk)}

    async def get(self, engine: AsyncEngine, pk: Sequence[Any]) -> ModelT | _NotApplicable | None:
        """The row with primary key values ``pk`` (soft-deleted ones included), or None."""
        if self._get is None:
            return NOT_APPLICABLE
        stmt, params = self._get, self._params(pk)
        rows = await read_on(engine, lambda conn: conn.execute(stmt, params).all())
        return self.hydrator.instances(rows)[0] if rows else None

    async def create(self, engine: AsyncEngine, obj: ModelT) -> ModelT | _NotApplicable:
        """INSERT new ``obj``, RETURNING what the server made (keys, server defaults) as the
        flush does; ``obj`` comes back loaded, detached."""
        if self._insert is None or not (self._key_only or engine.dialect.insert_returning):
            return NOT_APPLICABLE
        params = self.hydrator.insert_params(obj)
        if params is None:
            return NOT_APPLICABLE
        stmt, key_only = self._insert, self._key_only

        def work(conn: Connection) -> tuple[Any, Any]:
            result = conn.execute(stmt, params)  # Python-side defaults land in its parameters
            return result.last_inserted_params(), result.inserted_primary_key if key_only else result.one()

        sent, row = await write_on(engine, work)
        return self.hydrator.persisted(obj, sent, row)

    async def update(
        self, engine: AsyncEngine, pk: Sequence[Any], expected: Any, values: Mapping[str, Any], *, live: bool
    ) -> ModelT | _NotApplicable | None:
        """``update_by_id`` as one guarded UPDATE (see ``writes.guarded_update``; ``expected``:
        the version to check, or None), ``RETURNING`` every column where the database can.
        The changed row, or None when no row matched (absent, stale or unchanged: the
        caller's session path then tells which)."""
        if self._get is None or not update_guard(self.model, values, engine.dialect):
            return NOT_APPLICABLE
        if not engine.dialect.update_returning:
            return await self._update_loaded(engine, pk, expected, values, live=live)
        params = self._update_params(pk, expected, values)
        stmt = self._update_statement(tuple(values), expected, live, True)
        rows = await write_on(engine, lambda conn: conn.execute(stmt, params).all())
        return self.hydrator.instances(rows)[0] if rows else None

    async def _update_loaded(
        self, engine: AsyncEngine, pk: Sequence[Any], expected: Any, values: Mapping[str, Any], *, live: bool
    ) -> ModelT | _NotApplicable | None:
        """No UPDATE RETURNING (MariaDB): what the ORM's load-change-flush does, on one
        connection: read the row, then one UPDATE whose WHERE checks the version it read (a
        versioned model only; the result is the row read plus what was set). On the kit's
        MySQL engines each runs alone (:mod:`pkg.database.reset`), elsewhere in one transaction."""
        if not self._loaded_updates or self._get is None:
            return NOT_APPLICABLE
        version, get, pk_params = self._loaded_updates, self._get, self._params(pk)

        def work(conn: Connection) -> ModelT | None:
            rows = conn.execute(get, pk_params).all()
            current = self.hydrator.instances(rows)[0] if rows else None
            state = current.__dict__ if current is not None else {}
            if not state or (live and state.get("deleted_at") is not None):
                return None
            if expected is not None and state[version] != expected:
                return None
            changed = {k: v for k, v in values.items() if state[k] != v}  # as the ORM compares
            if not changed:
                return current
            params = self._update_params(pk, state[version], changed)
            stmt = self._update_statement(tuple(changed), True, live, False)
            matched = conn.execute(stmt, params).rowcount
            conn.commit()
            if matched != 1:
                return None  # changed meanwhile (or compares equal in SQL): the session path decides
            state.update(changed, **{k: params[f"b_{k}"] for k in self._stamps - set(changed)})
            state[version] += 1
            return current

        return await read_on(engine, work)

    def _update_params(self, pk: Sequence[Any], expected: Any, values: Mapping[str, Any]) -> dict[str, Any]:
        params = {**self._params(pk), **{f"v_{k}": v for k, v in values.items()}, "expected": expected}
        params.update((f"b_{k}", make()) for k, make in STAMPS.items() if k in self._stamps)
        return params

    def _update_statement(self, keys: tuple[str, ...], expected: Any, live: bool, returning: bool) -> Update:
        stmt = self._updates.get((keys, expected is not None, live, returning))
        return (
            stmt if stmt is not None else self._update_template(keys, expected is not None, live, returning)
        )

    def _update_template(self, keys: tuple[str, ...], check: bool, live: bool, returning: bool) -> Update:
        """The guarded UPDATE of ``keys`` with bind parameters (``pk{i}``, ``expected``,
        ``v_<field>``, ``b_<stamp>``), built once per shape so a call only binds values."""
        mapper = inspect(self.model)
        columns = {prop.key: prop.columns[0] for prop in mapper.column_attrs}
        new = {k: bindparam(f"v_{k}", type_=columns[k].type) for k in keys}
        criteria = [c == bindparam(f"pk{i}") for i, c in enumerate(mapper.primary_key)]
        if check and mapper.version_id_col is not None:
            criteria.append(mapper.version_id_col == bindparam("expected"))
        if live and "deleted_at" in columns:
            criteria.append(columns["deleted_at"].is_(None))
        criteria.append(or_(*(columns[k].is_distinct_from(new[k]) for k in keys)))
        sets: dict[Any, Any] = {columns[k]: new[k] for k in keys}
        for stamp in self._stamps - set(keys):
            sets[columns[stamp]] = bindparam(f"b_{stamp}", type_=columns[stamp].type)
        counter = mapper.version_id_col
        if counter is not None and mapper.get_property_by_column(counter).key not in keys:
            sets[counter] = counter + 1
        stmt = update(mapper.local_table).where(*criteria).values(sets)
        stmt = stmt.returning(*self.hydrator.columns) if returning else stmt
        if len(self._updates) >= _TEMPLATES:
            self._updates.clear()
        self._updates[(keys, check, live, returning)] = stmt
        return stmt

    async def delete(self, engine: AsyncEngine, pk: Sequence[Any]) -> bool | _NotApplicable:
        """Hard-DELETE the row with primary key values ``pk``; True if it existed."""
        if not self.hydrator.plain:
            return NOT_APPLICABLE
        stmt, params = self._delete, self._params(pk)
        return await write_on(engine, lambda conn: bool(conn.execute(stmt, params).rowcount))


def _version_key(mapper: Any) -> str | None:
    """The version attribute when read-then-update-by-version can stand for the ORM's flush:
    a version counter (the guard), and no UPDATE default beyond the stamps the kit sets."""
    counter = mapper.version_id_col
    if counter is None or mapper.version_id_generator is False:
        return None
    stamped = {mapper.get_property_by_column(c).key for c in mapper.local_table.c if c.onupdate is not None}
    if not stamped <= set(STAMPS) or any(c.server_onupdate is not None for c in mapper.local_table.c):
        return None
    return str(mapper.get_property_by_column(counter).key)
