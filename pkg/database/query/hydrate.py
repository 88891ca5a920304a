"""Detached ORM instances built straight from Core rows: the loader of the session-less reads.

A DAO read in its own session ends by closing that session, so what the caller gets is a
*detached* instance whose columns are loaded and whose relations raise
:class:`~pkg.database.errors.UnloadedRelationError` when touched. For a plain mapper (one
table, no inheritance, no deferred or SQL-expression columns, no composites, no ``load``
event or ``@reconstructor``) :class:`Hydrator` builds exactly that from the rows of a Core
``SELECT`` of the mapper's columns, without an ``AsyncSession``, the ORM compile/execution
context or an identity map: the same objects for a third of the client CPU::

    hydrator = Hydrator(User)
    if hydrator.plain:
        rows = (await conn.execute(hydrator.select().where(User.id == 5))).all()
        users = hydrator.instances(rows)      # detached, like after the session closed

What it sets is what ``sqlalchemy.orm.loading`` sets for a loaded row, then what closing the
session leaves: the column values in the instance ``__dict__``, the identity key, and per
relation the kit's raising lazy loader (``_LoadLazyAttribute``, a SQLAlchemy internal, also
used by ``query/loading.py``; ``tests/pkg/database/test_hydrate.py`` pins the behaviour).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import ClauseElement, Column, Select, inspect, select
from sqlalchemy.orm import Mapper, strategies

from pkg.database.query.loading import UNLOADED_STRATEGY

__all__ = ["Hydrator"]

ModelT = TypeVar("ModelT")
_LoadLazy: Any = getattr(strategies, "_LoadLazyAttribute", None) or strategies.LoadLazyAttribute  # type: ignore[attr-defined]


def plain_mapper(mapper: Mapper[Any]) -> bool:
    """True when a row of the mapper's columns is all an instance needs (see module doc)."""
    if mapper.inherits is not None or mapper.polymorphic_on is not None or mapper.with_polymorphic:
        return False
    if mapper.composites or mapper.class_manager.dispatch.load or mapper.class_manager.dispatch.refresh:
        return False
    table = mapper.local_table
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if prop.deferred or len(prop.columns) != 1 or not isinstance(column, Column):
            return False
        if column.table is not table:
            return False
    return True


class Hydrator(Generic[ModelT]):
    """Builds detached, loaded instances of one model from Core rows of :meth:`select`."""

    __slots__ = (
        "_bare_init",
        "_callables",
        "_cls",
        "_fetched_keys",
        "_keys",
        "_new",
        "_pk",
        "_version",
        "columns",
        "fetched",
        "inserts",
        "plain",
    )

    def __init__(self, model: type[ModelT]) -> None:
        mapper: Mapper[Any] = inspect(model)
        self.plain = plain_mapper(mapper)
        props = list(mapper.column_attrs)
        self.columns = tuple(prop.columns[0] for prop in props)
        self._keys = tuple(prop.key for prop in props)
        pk_keys = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
        self._pk = tuple(self._keys.index(k) for k in pk_keys)
        self._cls = mapper.class_
        self._new = mapper.class_manager.new_instance
        strategy_key = (("lazy", UNLOADED_STRATEGY),)
        counter, generator = mapper.version_id_col, mapper.version_id_generator
        self._version: tuple[str, Any] | None = None
        if counter is not None and generator is not False:
            self._version = (str(counter.key), generator)
        self.inserts = self.plain and _plain_insert(mapper)
        self._bare_init = self.inserts and _bare_constructor(mapper)
        # what an INSERT must bring back: what the server makes (keys, server defaults)
        made = [c for c in self.columns if c.primary_key or _server_made(c)] if self.inserts else []
        self.fetched = tuple(made)
        self._fetched_keys = tuple(self._keys[self.columns.index(c)] for c in self.fetched)
        self._callables = {
            rel.key: _LoadLazy(rel.key, rel._get_strategy(strategy_key), None, None)
            for rel in mapper.relationships
        }

    def select(self) -> Select[Any]:
        """``SELECT`` of the model's columns, in the order :meth:`instances` reads them."""
        return select(*self.columns)

    def instances(self, rows: Iterable[Sequence[Any]]) -> list[ModelT]:
        """One detached instance per row (rows of :meth:`select`, any WHERE/ORDER/LIMIT)."""
        keys, pk, cls, new, callables = self._keys, self._pk, self._cls, self._new, self._callables
        out: list[ModelT] = []
        append = out.append
        single = pk[0] if len(pk) == 1 else None  # the hot loop: rows of up to thousands
        for row in rows:
            obj = new()
            state = obj._sa_instance_state
            values = obj.__dict__
            values.update(zip(keys, row, strict=False))  # rows of select(): one value per key
            state.key = (cls, (row[single],) if single is not None else tuple(row[i] for i in pk), None)
            if callables:
                state.callables = callables.copy()
            append(obj)
        return out

    def fresh(self, values: Mapping[str, Any]) -> ModelT | None:
        """A new instance holding column ``values``, as the class's constructor would leave
        it, built without a per-attribute event; None where constructing does more (a custom
        ``__init__``, ``init`` listeners, validators or ``set`` listeners): call the class."""
        if not self._bare_init:
            return None
        obj: ModelT = self._new()
        obj.__dict__.update(values)
        return obj

    def insert_params(self, obj: ModelT) -> dict[str, Any] | None:
        """The INSERT parameters the ORM's flush would send for new ``obj`` (None values left
        to the column default unless the type stores None itself, the version counter at 1),
        or None when a value is a SQL expression (the ORM path renders those)."""
        state_dict = obj.__dict__
        params: dict[str, Any] = {}
        for key, column in zip(self._keys, self.columns, strict=True):
            if key not in state_dict:
                continue
            value = state_dict[key]
            if hasattr(value, "__clause_element__") or isinstance(value, ClauseElement):
                return None
            if value is not None or column.type.should_evaluate_none:
                params[column.key] = value
        if self._version is not None:  # as the flush does: the generator's first value
            counter, generator = self._version
            params[counter] = generator(None)
        return params

    def persisted(self, obj: ModelT, sent: Mapping[str, Any], row: Sequence[Any]) -> ModelT:
        """New ``obj`` turned into the loaded, detached instance the flush, commit and
        closing the session leave: the values ``sent`` (the INSERT's parameters, Python-side
        defaults included) and, for what the server made, the ``RETURNING`` ``row`` of
        :attr:`fetched`. Columns in neither stay unset (read as None), as after a flush."""
        state: Any = obj._sa_instance_state  # type: ignore[attr-defined]
        values = obj.__dict__
        for key, column in zip(self._keys, self.columns, strict=True):
            if column.key in sent:
                values[key] = sent[column.key]
        for key, column, value in zip(self._fetched_keys, self.fetched, row, strict=True):
            if column.key not in sent:
                values[key] = value
        state.key = (self._cls, tuple(values[self._keys[i]] for i in self._pk), None)
        state._commit_all(values)
        if self._callables:
            state.callables = dict(self._callables)
        return obj


def _server_made(column: Any) -> bool:
    """True when the database gives ``column`` its value at INSERT, so the flush fetches it
    back: a server default, ``Identity``, ``Computed``, or a default that is a SQL
    expression or sequence (rendered into the INSERT, not among its parameters)."""
    default = column.default
    in_sql = default is not None and (default.is_clause_element or default.is_sequence)
    return (
        in_sql
        or column.server_default is not None
        or column.computed is not None
        or column.identity is not None
    )


def _bare_constructor(mapper: Mapper[Any]) -> bool:
    """True when calling the class only sets the given attributes: SQLAlchemy's declarative
    constructor, no ``init`` listener but the mapper's own, no validators, no ``set``
    listeners on its columns."""
    manager = mapper.class_manager
    init = manager.original_init  # SQLAlchemy's default is named __init__, qualified as below
    if getattr(init, "__qualname__", None) != "_declarative_constructor" or not getattr(
        init, "__module__", ""
    ).startswith("sqlalchemy."):
        return False
    if any(getattr(fn, "__name__", None) != "_event_on_init" for fn in manager.dispatch.init):
        return False
    if mapper.validators:
        return False
    return not any(prop.class_attribute.dispatch.set for prop in mapper.column_attrs)


def _plain_insert(mapper: Mapper[Any]) -> bool:
    """True when an INSERT of the mapper's table with :meth:`Hydrator.insert_params` is what
    the ORM's flush sends: one table, no insert listeners or ORM-level (dataclass) defaults."""
    if mapper.dispatch.before_insert or mapper.dispatch.after_insert:
        return False
    # SQLAlchemy >= 2.1.x: ORM-level (dataclass) defaults the flush fills in; older releases
    # have no such step (a dataclass default is already in the instance from __init__)
    orm_defaults = getattr(mapper, "_insert_orm_defaults", None)
    return orm_defaults is None or not orm_defaults.get(mapper.local_table)
