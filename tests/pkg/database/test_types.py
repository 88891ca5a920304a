"""UTCDateTime and JSONType round trips on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database import JSONType, UTCDateTime


@pytest.fixture
async def table(create_tables) -> Table:
    metadata = MetaData()
    t = Table(
        "typed",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime()),
        Column("doc", JSONType()),
    )
    await create_tables(metadata)
    return t


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2024, 5, 1, 17, 30, 15, 123456, tzinfo=UTC),
        ),
        (datetime(2024, 5, 1, 12, 30, 15, 1), datetime(2024, 5, 1, 12, 30, 15, 1, tzinfo=UTC)),
    ],
)
async def test_datetimes_come_back_aware_utc_with_microseconds(engine, table, given, expected) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(table).values(id=1, at=given))
    async with engine.connect() as conn:
        got = (await conn.execute(select(table.c.at))).scalar_one()
        found = (await conn.execute(select(table.c.id).where(table.c.at == expected))).scalar_one()
    assert got == expected and got.utcoffset() == timedelta(0) and found == 1


async def test_utc_datetime_rejects_non_datetimes(engine, table) -> None:
    with pytest.raises(Exception, match="expects a datetime"):
        async with engine.begin() as conn:
            await conn.execute(insert(table).values(id=1, at="2024-01-01"))


@pytest.mark.parametrize("doc", [{"a": 1, "b": [True, None, "ü"]}, [1, 2], "text", 3.5, None])
async def test_json_round_trip(engine, table, doc) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(table).values(id=1, doc=doc))
    async with engine.connect() as conn:
        assert (await conn.execute(select(table.c.doc))).scalar_one() == doc


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_utc_datetime_reads_a_zoneless_timestamp_as_utc_too(engine) -> None:
    """asyncpg hands timestamptz over as aware UTC (no processing needed); a column that is
    really ``timestamp`` (naive, e.g. an older schema) still comes back aware UTC."""
    aware = literal_column("TIMESTAMPTZ '2024-01-02 03:04:05.000006+02'", type_=UTCDateTime())
    naive = literal_column("TIMESTAMP '2024-01-02 03:04:05.000006'", type_=UTCDateTime())
    async with engine.connect() as conn:
        row = (await conn.execute(select(aware, naive))).one()
    assert row[0] == datetime(2024, 1, 2, 1, 4, 5, 6, tzinfo=UTC) and row[0].tzinfo is UTC
    assert row[1] == datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC) and row[1].tzinfo is UTC


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_utc_datetime_infinity_still_comes_back_aware(engine: AsyncEngine) -> None:
    """asyncpg decodes timestamptz 'infinity' / '-infinity' as NAIVE datetime.max / .min
    (only finite values get tzinfo=UTC): they too come back aware UTC."""
    table = Table(
        "utc_infinity", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime())
    )
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.drop_all)
        await conn.run_sync(table.metadata.create_all)
        await conn.execute(text("INSERT INTO utc_infinity (id, at) VALUES (1, 'infinity'), (2, '-infinity')"))
    async with engine.connect() as conn:
        values = (await conn.execute(select(table.c.at).order_by(table.c.id))).scalars().all()
    assert [v.tzinfo for v in values] == [UTC, UTC]
