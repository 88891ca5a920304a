"""Slow-query logging and counters, on every backend."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, text

from pkg.database import query_stats
from tests.conftest import Backend

LOGGER = "pkg.database.slow_query"
SECRET = "hunter2-secret-value"
SLEEP = {"postgresql": "SELECT pg_sleep(:d), :secret", "mysql": "SELECT SLEEP(:d), :secret"}


def slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


async def test_real_sleep_is_logged_with_params_redacted(server_backend: Backend, caplog) -> None:
    backend = server_backend
    eng = backend.engine(slow_query_threshold=0.1)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    try:
        async with eng.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await conn.execute(text(SLEEP[backend.name]), {"d": 0.3, "secret": SECRET})
    finally:
        await eng.dispose()
    records = slow_records(caplog)
    assert len(records) == 1
    message = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "SLEEP" in message.upper() and "[2 redacted]" in message
    assert SECRET not in message
    elapsed_ms = records[0].args[0]  # type: ignore[index]
    assert 250 <= elapsed_ms < 5000
    stats = query_stats(eng)
    assert stats.slow_statements == 1 and stats.statements >= 2 and stats.total_time >= 0.25


async def select_secret_and_assert_redacted(eng, caplog: pytest.LogCaptureFixture) -> None:
    """Run one statement with a secret parameter on ``eng`` (threshold 0): logged, redacted."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    try:
        async with eng.connect() as conn:
            await conn.execute(text("SELECT :secret"), {"secret": SECRET})
    finally:
        await eng.dispose()
    messages = [r.getMessage() for r in slow_records(caplog)]
    assert any("[1 redacted]" in m for m in messages)
    assert not any(SECRET in m for m in messages)
    assert query_stats(eng).statements >= 1


async def test_threshold_zero_logs_everything_redacted(backend: Backend, caplog) -> None:
    await select_secret_and_assert_redacted(backend.engine(slow_query_threshold=0.0), caplog)


async def test_opt_in_shows_parameters(backend: Backend, caplog) -> None:
    eng = backend.engine(slow_query_threshold=0.0, log_parameters=True)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    try:
        async with eng.connect() as conn:
            await conn.execute(text("SELECT :value"), {"value": "visible-value"})
    finally:
        await eng.dispose()
    assert any("visible-value" in r.getMessage() for r in slow_records(caplog))


async def test_executemany_and_long_sql(backend: Backend, caplog) -> None:
    metadata = MetaData()
    t = Table("ev_rows", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))
    eng = backend.engine(slow_query_threshold=0.0)
    try:
        async with eng.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        caplog.set_level(logging.WARNING, logger=LOGGER)
        async with eng.begin() as conn:
            await conn.execute(t.insert(), [{"id": i, "name": SECRET} for i in range(1, 4)])
            long_sql = "SELECT '" + "x" * 5000 + "'"
            await conn.execute(text(long_sql))
    finally:
        await eng.dispose()
    messages = [r.getMessage() for r in slow_records(caplog)]
    inserts = [m for m in messages if "INSERT INTO ev_rows" in m]
    assert inserts, messages
    assert not any(SECRET in m for m in messages)
    assert any("executemany x3" in m or "[6 redacted]" in m for m in inserts), inserts
    longs = [m for m in messages if "xxxxxxxx" in m]
    assert longs and all("chars]" in m and len(m) < 2300 for m in longs)


async def test_counters_count_statements_without_threshold(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """``None``: never slow, never logged, but every statement counted and timed."""
    eng = backend.engine(slow_query_threshold=None)
    try:
        async with eng.connect() as conn:
            await conn.execute(text("SELECT 1"))
            before = query_stats(eng)
            with caplog.at_level(logging.WARNING, logger="pkg.database.slow_query"):
                for _ in range(5):
                    await conn.execute(text("SELECT 1"))
        after = query_stats(eng)
    finally:
        await eng.dispose()
    assert after.statements - before.statements == 5
    assert after.total_time > before.total_time
    assert after.slow_statements == 0 and caplog.records == []


async def test_failed_statement_does_not_corrupt_timing(backend: Backend) -> None:
    """A statement that fails is counted (and, at threshold 0, slow) like one that succeeds."""
    eng = backend.engine(slow_query_threshold=0.0)
    try:
        async with eng.connect() as conn:
            await conn.execute(text("SELECT 1"))
            before = query_stats(eng)
            with pytest.raises(Exception, match=r"(?i)no_such_table|doesn't exist|does not exist"):
                await conn.execute(text("SELECT * FROM no_such_table"))
            await conn.rollback()
            await conn.execute(text("SELECT 1"))
            after = query_stats(eng)
    finally:
        await eng.dispose()
    assert after.statements - before.statements == after.slow_statements - before.slow_statements
    assert after.statements - before.statements in (2, 3)  # + ROLLBACK where the driver sends SQL
    assert after.total_time >= before.total_time


async def test_error_messages_hide_parameters_by_default(backend: Backend) -> None:
    eng = backend.engine()
    try:
        async with eng.connect() as conn:
            with pytest.raises(Exception) as info:
                await conn.execute(text("SELECT * FROM no_such_table WHERE x = :s"), {"s": SECRET})
    finally:
        await eng.dispose()
    assert SECRET not in str(info.value)


async def test_cursor_event_variant_logs_the_same(backend: Backend, caplog) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from pkg.database import attach_query_monitor

    eng = create_async_engine(backend.url, hide_parameters=True)
    attach_query_monitor(eng.sync_engine, 0.0, via="cursor")
    await select_secret_and_assert_redacted(eng, caplog)


async def test_failed_statement_is_counted_and_logged_when_slow(server_backend: Backend, caplog) -> None:
    timeout_sql = {
        "postgresql": ("SET statement_timeout = 200", "SELECT pg_sleep(2)"),
        "mysql": ("SET SESSION max_statement_time = 0.2", "SELECT SLEEP(2) FROM (SELECT 1) t"),
    }[server_backend.name]
    eng = server_backend.engine(slow_query_threshold=0.1)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    try:
        async with eng.connect() as conn:
            await conn.execute(text(timeout_sql[0]))
            try:
                await conn.execute(text(timeout_sql[1]))
            except Exception:  # PostgreSQL cancels; MariaDB may return early instead
                await conn.rollback()
    finally:
        await eng.dispose()
    assert query_stats(eng).slow_statements == 1
    assert any("SLEEP" in r.getMessage().upper() for r in slow_records(caplog))
