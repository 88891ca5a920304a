"""The direct (session-less) create leaves what the flush leaves, for key and default
shapes: UUID, natural and composite keys, SQL-expression defaults. Real servers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Integer, String, Uuid, event, func, inspect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

from pkg.database import BaseDao, new_async_session_maker


class _Base(DeclarativeBase):
    pass


class _UuidKey(_Base):
    __tablename__ = "direct_uuid_key"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(20))


class _CodeKey(_Base):
    __tablename__ = "direct_code_key"
    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


class _PairKey(_Base):
    __tablename__ = "direct_pair_key"
    a: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    b: Mapped[str] = mapped_column(String(10), primary_key=True)
    tag: Mapped[str] = mapped_column(String(20), server_default="srv")


class _SqlDefault(_Base):
    """A client-side SQL-expression default (as ``default=func.now()``): the server computes
    the value inside the INSERT, so it is not among the statement's parameters."""

    __tablename__ = "direct_sql_default"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    made: Mapped[str] = mapped_column(String(20), default=func.lower("ABC"))


def _dao(model: type[Any], engine: AsyncEngine) -> BaseDao[Any]:
    dao_cls: type[BaseDao[Any]] = type(f"{model.__name__}Dao", (BaseDao,), {"model_cls": model})
    return dao_cls(session_provider=new_async_session_maker(engine))


def _loaded(obj: Any) -> dict[str, Any]:
    return {p.key: obj.__dict__.get(p.key, "<unset>") for p in inspect(type(obj)).column_attrs}


_KEYLESS = [  # (model, values of the direct create, values of the session create)
    (_UuidKey, {"name": "n"}, {"name": "n"}),
    (_CodeKey, {"code": "c1", "name": "n"}, {"code": "c2", "name": "n"}),
    (_PairKey, {"a": 1, "b": "x"}, {"a": 1, "b": "y"}),
]


@pytest.mark.parametrize("model", [m for m, _, _ in _KEYLESS], ids=lambda m: m.__name__)
async def test_dao_of_a_model_without_an_autoincrement_key(
    engine: AsyncEngine, create_tables: Any, model: type[Any]
) -> None:
    """A UUID, natural (string) or composite primary key has no autoincrement column: the
    DAO still builds (columns compare by identity there, ``==`` would be SQL) and the direct
    create leaves what the session path leaves."""
    await create_tables(_Base.metadata)
    _, direct_values, session_values = next(c for c in _KEYLESS if c[0] is model)
    dao = _dao(model, engine)
    direct = await dao.create(**direct_values)
    maker = new_async_session_maker(engine)
    async with maker() as s:
        joined = await dao.create(session=s, **session_values)
        await s.commit()
    keys = {c.key for c in inspect(model).primary_key}
    strip = lambda d: {k: v for k, v in d.items() if k not in keys}  # noqa: E731
    assert strip(_loaded(direct)) == strip(_loaded(joined))


async def test_direct_create_loads_a_sql_expression_default_like_the_session(
    engine: AsyncEngine, create_tables: Any
) -> None:
    """The flush (eager_defaults="auto") fetches a SQL-expression default back (the ORM
    counts ``default=<SQL expression>`` among server defaults); the direct create RETURNs
    only server_default/Computed/Identity columns and the PK, and the value is not in
    ``last_inserted_params()``: the returned object reads None instead of the stored value."""
    await create_tables(_Base.metadata)
    dao = _dao(_SqlDefault, engine)
    direct = await dao.create(name="d")
    async with new_async_session_maker(engine)() as s:
        joined = await dao.create(name="s", session=s)
        await s.commit()
    stored = await dao.get_or_raise(direct.id)
    assert joined.made == stored.made == "abc"
    assert direct.made == "abc"


class _Validated(_Base):
    __tablename__ = "direct_validated"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))

    @validates("name")
    def _lower(self, key: str, value: str) -> str:
        return value.lower()


class _Inited(_Base):
    __tablename__ = "direct_inited"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))

    def __init__(self, **values: Any) -> None:
        values.setdefault("name", "from-init")
        super().__init__(**values)


class _Listened(_Base):
    __tablename__ = "direct_listened"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


@event.listens_for(_Listened.name, "set", retval=True)
def _shout(target: Any, value: str, old: Any, initiator: Any) -> str:
    return value.upper()


@pytest.mark.parametrize(
    ("model", "given", "expected"),
    [(_Validated, {"name": "MiXed"}, "mixed"), (_Inited, {}, "from-init"), (_Listened, {"name": "a"}, "A")],
    ids=["validates", "custom __init__", "set listener"],
)
async def test_create_runs_what_constructing_the_class_runs(
    engine: AsyncEngine, create_tables: Any, model: type[Any], given: dict[str, Any], expected: str
) -> None:
    """The fast construction (no per-attribute events) is used only where nothing listens:
    a validator, a custom ``__init__`` or a ``set`` listener still shape the row."""
    await create_tables(_Base.metadata)
    made = await _dao(model, engine).create(**given)
    assert made.name == expected
    assert (await _dao(model, engine).get_or_raise(made.id)).name == expected


class _Renamed(_Base):
    """Attribute names that differ from their column names."""

    __tablename__ = "direct_renamed"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column("label_col", String(20))
    size: Mapped[int] = mapped_column("size_col", Integer, default=0)


async def test_builder_update_and_delete_by_attribute_name_without_a_session(
    engine: AsyncEngine, create_tables: Any
) -> None:
    """The session-less UPDATE/DELETE of the builder takes attribute names, as the ORM does."""
    await create_tables(_Base.metadata)
    dao = _dao(_Renamed, engine)
    made = [await dao.create(label=f"l{i}", size=i) for i in range(3)]
    assert await dao.query().filter(size__gte=1).update(label="big") == 2
    assert [(r.label, r.size) for r in await dao.query().order_by("id").all()] == [
        ("l0", 0),
        ("big", 1),
        ("big", 2),
    ]
    assert await dao.query().filter(label="big", size=2).delete() == 1
    assert [r.id for r in await dao.query().order_by("id").all()] == [made[0].id, made[1].id]


class _ParamNamed(_Base):
    """Columns named like the builder's bound parameters (``q<n>`` lookups, ``u_<field>`` values)."""

    __tablename__ = "direct_param_named"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey: Mapped[int] = mapped_column(Integer)
    q1: Mapped[str] = mapped_column(String(20), default="")
    q2: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(20), default="")
    u_status: Mapped[str] = mapped_column(String(20), default="")


async def test_builder_update_of_columns_named_like_its_parameters(
    engine: AsyncEngine, create_tables: Any
) -> None:
    """Executed with its parameters, an UPDATE would take ``q1`` / ``u_status`` for columns to
    SET: such a shape is built fresh, and only the asked-for columns change."""
    await create_tables(_Base.metadata)
    dao = _dao(_ParamNamed, engine)
    row = await dao.create(survey=7, q1="a1", q2="a2", status="s", u_status="us")
    assert await dao.query().filter(survey=7, id=row.id).update(q2="b2") == 1
    assert await dao.query().filter(id=row.id).update(status="t") == 1
    assert await dao.query().filter(q1="a1").update(u_status="vs") == 1
    after = await dao.get_or_raise(row.id)
    assert (after.q1, after.q2, after.status, after.u_status) == ("a1", "b2", "t", "vs")
