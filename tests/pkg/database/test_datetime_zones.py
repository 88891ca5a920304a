"""An aware datetime keeps its instant in a plain ``DateTime(timezone=True)`` column, on every backend.

MySQL/MariaDB and SQLite store no zone: the kit binds aware values as UTC there and they
read back naive UTC (aware on PostgreSQL), so the tests compare instants in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, Integer, MetaData, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pkg.database import BaseDao

PLUS8 = timezone(timedelta(hours=8))
AT = datetime(2024, 3, 1, 7, 8, 9, tzinfo=PLUS8)  # 2024-02-29 23:08:09 UTC
AT_UTC = datetime(2024, 2, 29, 23, 8, 9, tzinfo=UTC)


class _Base(DeclarativeBase):
    metadata = MetaData()


class Meeting(_Base):
    """A user's own table: a plain timezone=True column, not the kit's UTCDateTime."""

    __tablename__ = "tz_meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MeetingDao(BaseDao[Meeting]):
    model_cls = Meeting


def as_utc(value: datetime) -> datetime:
    """The instant in UTC: naive values (zone-less backends) are UTC by contract."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@pytest.fixture
async def meetings(create_tables, maker: async_sessionmaker[AsyncSession]) -> MeetingDao:
    await create_tables(Meeting.metadata)
    return MeetingDao(session_provider=maker)


async def stored(maker: async_sessionmaker[AsyncSession], code: str) -> datetime:
    async with maker() as session:
        value = await session.scalar(select(Meeting.starts_at).where(Meeting.code == code))
    assert value is not None
    return value


async def test_create_keeps_the_instant(meetings: MeetingDao, maker) -> None:
    await meetings.create(code="a", starts_at=AT)
    assert as_utc(await stored(maker, "a")) == AT_UTC


async def test_update_upsert_and_builder_update_keep_the_instant(meetings: MeetingDao, maker) -> None:
    made = await meetings.create(code="a", starts_at=datetime(2000, 1, 1, tzinfo=UTC))
    await meetings.update_by_id(made.id, starts_at=AT)
    assert as_utc(await stored(maker, "a")) == AT_UTC
    await meetings.upsert({"code": "b", "starts_at": AT}, conflict_on=["code"])  # insert branch
    await meetings.upsert({"code": "a", "starts_at": AT + timedelta(hours=1)}, conflict_on=["code"])
    assert as_utc(await stored(maker, "b")) == AT_UTC
    assert as_utc(await stored(maker, "a")) == AT_UTC + timedelta(hours=1)
    assert await meetings.query().filter(code="b").update(starts_at=AT - timedelta(hours=1)) == 1
    assert as_utc(await stored(maker, "b")) == AT_UTC - timedelta(hours=1)


async def test_filters_agree_with_writes(meetings: MeetingDao) -> None:
    await meetings.create(code="a", starts_at=AT)
    same_instant_in_utc = AT.astimezone(UTC)
    assert await meetings.count(starts_at=AT) == 1
    assert await meetings.count(starts_at=same_instant_in_utc) == 1
    assert await meetings.count(starts_at__lt=AT_UTC + timedelta(minutes=1)) == 1
    assert await meetings.count(starts_at__gt=AT_UTC - timedelta(minutes=1)) == 1
    assert await meetings.count(starts_at__gt=datetime(2024, 3, 1, 0, 0, tzinfo=UTC)) == 0
    many = [AT_UTC + timedelta(seconds=i) for i in range(1, 1500)] + [AT]  # the long-IN form too
    assert await meetings.count(starts_at__in=many) == 1
    assert await meetings.count(starts_at__in=[same_instant_in_utc]) == 1
