"""Constraint and index names: the naming convention's shapes, at most 63 characters, and the
same name on every backend, also for long multi-column names."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.dialects import oracle
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from pkg.database import NAMING_CONVENTION, autogenerate_options
from pkg.database.naming import MAX_NAME_LENGTH, limit_name

PARENT = "billing_accounts_with_a_long_descriptive_name"  # 45 characters
CHILD = "subscription_renewal_schedule_entries_archive"  # 45 characters
COLUMNS = ("billing_account_reference", "billing_region_identifier", "renewal_window_code")


def _models() -> MetaData:
    md = MetaData(naming_convention=NAMING_CONVENTION)
    parent = Table(PARENT, md, Column("id", Integer, primary_key=True))
    Table(
        CHILD,
        md,
        Column("id", Integer, primary_key=True),
        *(Column(name, String(40), nullable=False) for name in COLUMNS),
        Column("billing_account_owner_id", Integer, ForeignKey(parent.c.id), nullable=True),
        UniqueConstraint(*COLUMNS),
        Index(None, *reversed(COLUMNS)),
        Index(None, "renewal_window_code"),
        CheckConstraint("renewal_window_code <> ''", name="renewal_window_code_is_not_empty"),
    )
    return md


def _names(table: Table) -> set[str]:
    """The names of every constraint and index of ``table``."""
    return {str(c.name) for c in table.constraints} | {str(i.name) for i in table.indexes}


def test_limit_name_keeps_short_names_and_hashes_long_ones_deterministically() -> None:
    assert limit_name("uq_users_email") == "uq_users_email"
    long_a, long_b = "ix_" + "a" * 80, "ix_" + "a" * 79 + "b"
    assert len(limit_name(long_a)) == MAX_NAME_LENGTH == 63
    assert limit_name(long_a) == limit_name(long_a) != limit_name(long_b)  # same prefix, other hash
    assert limit_name(long_a).startswith("ix_aaaa") and limit_name(long_a)[-9] == "_"


def test_the_convention_keeps_its_shapes_and_limits_long_names() -> None:
    names = _names(_models().tables[CHILD])
    expected = {
        f"pk_{CHILD}",
        limit_name(f"ck_{CHILD}_renewal_window_code_is_not_empty"),
        limit_name(f"uq_{CHILD}_{'_'.join(COLUMNS)}"),
        limit_name(f"ix_{CHILD}_{'_'.join(reversed(COLUMNS))}"),
        limit_name(f"ix_{CHILD}_renewal_window_code"),
        limit_name(f"fk_{CHILD}_billing_account_owner_id_{PARENT}"),
    }
    assert names == expected
    assert len(expected - {f"pk_{CHILD}"} - {n for n in expected if len(n) < MAX_NAME_LENGTH}) == 5  # cut
    assert all(len(n) <= MAX_NAME_LENGTH for n in names)


def test_oracle_ddl_uses_the_same_names() -> None:
    md = _models()
    ddl = "".join(str(CreateTable(t).compile(dialect=oracle.dialect())) for t in md.sorted_tables) + "".join(
        str(CreateIndex(i).compile(dialect=oracle.dialect())) for i in md.tables[CHILD].indexes
    )
    for name in _names(md.tables[CHILD]):
        assert name in ddl


def _stored_names_and_drift(conn: Connection, md: MetaData) -> tuple[set[str], list[Any]]:
    insp = inspect(conn)
    stored = {insp.get_pk_constraint(CHILD)["name"]}
    stored |= {c["name"] for c in insp.get_unique_constraints(CHILD)}
    stored |= {i["name"] for i in insp.get_indexes(CHILD)}
    stored |= {f["name"] for f in insp.get_foreign_keys(CHILD)}
    stored |= {c["name"] for c in insp.get_check_constraints(CHILD)}
    mine = {"include_name": lambda name, kind, parent: kind != "table" or name in md.tables}
    context = MigrationContext.configure(conn, opts={**autogenerate_options(conn.dialect.name), **mine})
    return {str(n) for n in stored if n}, compare_metadata(context, md)


async def test_every_backend_stores_exactly_the_convention_names(engine: AsyncEngine, create_tables) -> None:
    md = _models()
    await create_tables(md)
    async with engine.connect() as conn:
        stored, drift = await conn.run_sync(_stored_names_and_drift, md)
    assert drift == []  # Alembic finds nothing to change: the names round-trip exactly
    expected = _names(md.tables[CHILD])
    primary = f"pk_{CHILD}"  # MariaDB calls every primary key PRIMARY
    assert expected - {primary} <= stored
    assert (primary in stored) == (engine.dialect.name != "mysql")
