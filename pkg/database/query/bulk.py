"""Bulk INSERT for ``BaseDao.create_many``: rows to the driver's parameter form in one pass.

``bulk_rows`` checks the field names once (``UnknownFieldError``, before any SQL), maps
them to column keys and fills Python-side column defaults exactly as
:func:`~pkg.database.query.upsert.fill_defaults` does, column by column instead of a dict
per row. ``insert_bulk`` then sends the rows as one executemany per
``EXECUTEMANY_ROWS``::

    bulk = bulk_rows(User, ({"username": f"u{i}", "email": f"u{i}@x.io"} for i in range(10_000)))
    async with users.transaction() as session:  # any AsyncSession; the DAO opens its own
        await insert_bulk(session, User.__table__, bulk)

On PostgreSQL, MySQL/MariaDB and SQLite the INSERT is compiled once per (dialect, keys)
and each column's values go through that column type's bind processor in one ``map``
(UTC conversion, orjson), giving the same tuples SQLAlchemy would build row by row;
they are sent with ``exec_driver_sql`` on the session's connection, so the statement
still runs through SQLAlchemy's execution: engine and cursor events (slow-query
monitor, metrics), error translation, the session's transaction and pool bookkeeping.
Everything else (other dialects, bind typing by ``setinputsizes``, Python-side
primary-key defaults, SQL-expression defaults, ``schema_translate_map``, sessions with
``do_orm_execute`` hooks such as read-only sessions) takes the ORM path:
``session.execute(insert(table), dicts)`` in chunks under the bind-parameter limit.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from itertools import chain
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Table, insert, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.ext.asyncio import AsyncSession

from pkg.database.query.limits import rows_per_statement
from pkg.database.query.writes import check_fields
from pkg.database.types import JSONType, UTCDateTime
from pkg.database.utils import json_dumps

__all__ = ["EXECUTEMANY_ROWS", "BulkRows", "bulk_rows", "insert_bulk"]

EXECUTEMANY_ROWS = 10_000  # rows converted and sent per executemany (bounds the extra memory)
_DIRECT_DIALECTS = frozenset({"postgresql", "mysql", "mariadb", "sqlite"})
_MISSING: Any = object()
Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class BulkRows:
    """Rows as columns: ``values[i]`` holds column ``keys[i]`` of every row, defaults filled."""

    keys: tuple[str, ...]
    values: list[list[Any]]
    count: int

    def dicts(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Rows ``start:stop`` as ``{column key: value}`` (the form ``fill_defaults`` returns)."""
        cols = [v[start:stop] for v in self.values]
        return [dict(zip(self.keys, row, strict=True)) for row in zip(*cols, strict=True)]


@dataclass(frozen=True, slots=True)
class _Model:
    column_key: Mapping[str, str]  # attribute name -> column key
    defaults: tuple[tuple[str, Any], ...]  # (column key, ColumnDefault) of non-PK Python defaults


_models: weakref.WeakKeyDictionary[type[Any], _Model] = weakref.WeakKeyDictionary()


def _model(model: type[Any]) -> _Model:
    known = _models.get(model)
    if known is None:
        mapper = inspect(model)
        keys = {name: prop.columns[0].key for name, prop in mapper.column_attrs.items()}
        table: Table = mapper.local_table
        defaults = tuple(
            (c.key, c.default) for c in table.columns if c.default is not None and not c.primary_key
        )
        known = _models[model] = _Model(keys, defaults)
    return known


def _default_values(default: Any, n: int) -> list[Any]:
    if default.is_callable:
        call = default.arg
        return [call(None) for _ in range(n)]
    return [default.arg] * n


def _column(rows: Sequence[Mapping[str, Any]], name: str, default: Any, uniform: bool) -> list[Any]:
    if uniform:
        return [row[name] for row in rows]
    values = [row.get(name, _MISSING) for row in rows]
    for i, value in enumerate(values):
        if value is _MISSING:  # the key is in other rows only: its default, else NULL
            values[i] = None if default is None else _default_values(default, 1)[0]
    return values


def bulk_rows(model: type[Any], rows: Iterable[Mapping[str, Any]]) -> BulkRows:
    """``rows`` of ``model`` (attribute names) checked, as columns, Python defaults filled."""
    rows = rows if isinstance(rows, list) else list(rows)
    names = list(dict.fromkeys(chain.from_iterable(rows)))
    check_fields(model, names)
    plan = _model(model)
    defaults = dict(plan.defaults)
    uniform = not rows or min(map(len, rows)) == len(names)
    keys, values = [], []
    for name in names:
        key = plan.column_key[name]
        keys.append(key)
        values.append(_column(rows, name, defaults.get(key), uniform))
    for key, default in plan.defaults:
        if key not in keys:
            keys.append(key)
            values.append(_default_values(default, len(rows)))
    return BulkRows(tuple(keys), values, len(rows))


@dataclass(frozen=True, slots=True)
class _Direct:
    sql: str
    order: tuple[int, ...]  # positions in BulkRows.keys, in the statement's parameter order
    processors: tuple[Processor | None, ...]
    same_as: tuple[int | None, ...]  # an earlier parameter of an identical datetime type
    row_format: Any  # the dialect's execute_sequence_format (tuple on these drivers)


_compiled: weakref.WeakKeyDictionary[Dialect, dict[tuple[Table, tuple[str, ...]], _Direct | None]]
_compiled = weakref.WeakKeyDictionary()


def _plan(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> _Direct | None:
    """The statement and per-column processors SQLAlchemy would use; None: take the ORM path."""
    if dialect.name not in _DIRECT_DIALECTS or dialect.bind_typing is BindTyping.SETINPUTSIZES:
        return None
    compiled: Any = insert(table).compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    names = compiled.positiontup
    if (
        not compiled.positional
        or compiled.insert_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled._insertmanyvalues is not None
        or sorted(names) != sorted(keys)
    ):
        return None
    order = tuple(keys.index(name) for name in names)
    types = [table.c[name].type for name in names]
    processors = tuple(_processor(t, dialect) for t in types)
    return _Direct(compiled.string, order, processors, _same_as(types), dialect.execute_sequence_format)


def _same_as(types: list[Any]) -> tuple[int | None, ...]:
    """For each datetime parameter, the first earlier one of an identically configured type:
    an exact ``datetime`` object it shares with that one (``created_at = updated_at = now``)
    is converted once."""
    first: dict[tuple[type, str], int] = {}
    same: list[int | None] = []
    for i, type_ in enumerate(types):
        key = (type(type_), repr(type_))
        same.append(first.setdefault(key, i) if type(type_) in (UTCDateTime, DateTime) else None)
    return tuple(None if j == i else j for i, j in enumerate(same))


# Values a shortcut processor must turn into exactly what the type's own processor gives.
_DATETIME_PROBES = (
    datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=8))),
    datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(1999, 12, 31, 23, 0, 0, 1, tzinfo=UTC),
    datetime(987, 6, 5, 4, 3, 2),
    datetime(2030, 1, 1),
)
_JSON_PROBES: tuple[Any, ...] = ({"a": [1, "é", None, 1.5, True]}, {1: {"k": []}}, [], {}, [{"n": -2}])
_BOOL_PROBES = (True, False)


def _utc_text(slow: Processor) -> Processor:
    """SQLite: an exact ``datetime`` as its UTC wall time, ``YYYY-MM-DD HH:MM:SS.ffffff``."""

    def process(value: Any) -> Any:
        if type(value) is datetime:
            if value.tzinfo is None:
                return value.isoformat(" ", "microseconds")
            return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]  # drops "+00:00"
        return slow(value)

    return process


def _utc_aware(slow: Processor) -> Processor:
    """PostgreSQL: an aware exact ``datetime`` converted to UTC (naive ones: the type's way)."""

    def process(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is not None:
            return value.astimezone(UTC)
        return slow(value)

    return process


def _utc_naive(slow: Processor) -> Processor:
    """MySQL/MariaDB: an exact ``datetime`` as its naive UTC wall time."""

    def process(value: Any) -> Any:
        if type(value) is datetime:
            return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
        return slow(value)

    return process


def _json_text(slow: Processor) -> Processor:
    """A ``dict`` or ``list`` as orjson text (what the engine's ``json_serializer`` gives)."""

    def process(value: Any) -> Any:
        if type(value) is dict or type(value) is list:
            return json_dumps(value)
        return slow(value)

    return process


def _bool_table(slow: Processor) -> Processor:
    """``True`` / ``False`` looked up (0 / 1 where the dialect has no native boolean)."""
    true, false = slow(True), slow(False)

    def process(value: Any) -> Any:
        if value is True:
            return true
        return false if value is False else slow(value)

    return process


_DATETIME_SHORTCUTS: dict[str, Callable[[Processor], Processor]] = {
    "sqlite": _utc_text,
    "postgresql": _utc_aware,
    "mysql": _utc_naive,
    "mariadb": _utc_naive,
}


def _shortcut(type_: Any, dialect: str, slow: Processor) -> tuple[Processor, tuple[Any, ...]] | None:
    kind = type(type_)
    if kind in (UTCDateTime, DateTime) and dialect in _DATETIME_SHORTCUTS:
        return _DATETIME_SHORTCUTS[dialect](slow), _DATETIME_PROBES
    if kind in (JSONType, JSON):
        return _json_text(slow), _JSON_PROBES
    if kind is Boolean:
        return _bool_table(slow), _BOOL_PROBES
    return None


def _agree(fast: Processor, probes: tuple[Any, ...], slow: Processor) -> bool:
    try:
        return all(type(fast(p)) is type(slow(p)) and repr(fast(p)) == repr(slow(p)) for p in probes)
    except Exception:  # a probe the type rejects: no shortcut
        return False


def _processor(type_: Any, dialect: Dialect) -> Processor | None:
    """The column type's bind processor on ``dialect``. For the kit's ``UTCDateTime`` and
    ``JSONType`` and plain ``DateTime``, ``JSON``, ``Boolean``: a shortcut without the
    TypeDecorator layers, used only if it gives the same result on every probe value
    (values of other types go through the type's own processor). Per-value processing is
    what a bulk insert spends its client time on (SQLite's DATETIME formatting most)."""
    slow: Processor | None = type_.dialect_impl(dialect).bind_processor(dialect)
    if slow is None:
        return None
    found = _shortcut(type_, dialect.name, slow)
    return found[0] if found is not None and _agree(*found, slow) else slow


def _direct(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> _Direct | None:
    per_dialect = _compiled.setdefault(dialect, {})
    if (table, keys) not in per_dialect:
        per_dialect[table, keys] = _plan(dialect, table, keys)
    return per_dialect[table, keys]


def _params(plan: _Direct, bulk: BulkRows, start: int, stop: int) -> list[Any]:
    """Rows ``start:stop`` as the driver's parameter tuples; a value a bind processor rejects
    raises ``StatementError`` (cause kept), as SQLAlchemy's own parameter processing does."""
    raws: list[list[Any]] = []
    cols: list[list[Any]] = []
    try:
        for at, proc, same in zip(plan.order, plan.processors, plan.same_as, strict=True):
            raws.append(values := bulk.values[at][start:stop])
            if proc is None:
                cols.append(values)
            elif same is None:
                cols.append(list(map(proc, values)))
            else:  # the very datetime objects of an earlier, identical column: reuse its result
                done = zip(values, raws[same], cols[same], strict=True)
                cols.append([o if v is r and type(v) is datetime else proc(v) for v, r, o in done])
    except Exception as exc:
        raise sa_exc.StatementError(str(exc), plan.sql, None, exc, hide_parameters=True) from exc
    rows = zip(*cols, strict=True)
    return list(rows) if plan.row_format is tuple else list(map(plan.row_format, rows))


def _plain_defaults(bulk: BulkRows, table: Table) -> bool:
    """Every filled default is a value or a Python callable (SQL-expression and sequence
    defaults are left to the ORM path)."""
    for key in bulk.keys:
        default = table.c[key].default
        if default is not None and not (default.is_callable or default.is_scalar):
            return False
    return True


async def insert_bulk(session: AsyncSession, table: Table, bulk: BulkRows) -> None:
    """INSERT every row of ``bulk`` into ``table`` in ``session``'s transaction."""
    stmt = insert(table)
    plan = None
    if not session.sync_session.dispatch.do_orm_execute and _plain_defaults(bulk, table):
        if session.autoflush:  # as session.execute() would: pending objects go first
            await session.flush()
        conn = await session.connection(bind_arguments={"clause": stmt})
        sync = conn.sync_connection  # engine and connection options, as execution sees them
        if sync is not None and not sync.get_execution_options().get("schema_translate_map"):
            plan = _direct(conn.dialect, table, bulk.keys)
    if plan is None:
        step = rows_per_statement(session.get_bind(clause=stmt).dialect.name, len(bulk.keys))
        for i in range(0, bulk.count, step):
            await session.execute(stmt, bulk.dicts(i, i + step))
        return
    for i in range(0, bulk.count, EXECUTEMANY_ROWS):
        await conn.exec_driver_sql(plan.sql, _params(plan, bulk, i, i + EXECUTEMANY_ROWS))
