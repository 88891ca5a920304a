"""Leak tracking: owner (task, call site, age) per checkout, overdue warnings, the test helper."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pkg.database.lifecycle import checked_out_connections, configure_leak_tracking, reset_leak_tracking
from pkg.database.testing import assert_no_checked_out_connections


async def test_checkout_records_task_site_and_age(engine: AsyncEngine) -> None:
    acquired = asyncio.Event()

    async def holder(release: asyncio.Event) -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            acquired.set()
            await asyncio.sleep(0.1)  # an age to measure, not a synchronisation
            await release.wait()

    release = asyncio.Event()
    task = asyncio.create_task(holder(release), name="report-builder")
    await acquired.wait()
    await asyncio.sleep(0.1)
    [held] = checked_out_connections(engine)
    assert held.task == "report-builder"
    assert held.site is not None and "test_leaks.py" in held.site and "in holder" in held.site
    assert held.age() >= 0.1
    assert "report-builder" in held.describe()
    release.set()
    await task
    assert checked_out_connections(engine) == []


async def test_held_past_threshold_warns_with_owner(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    configure_leak_tracking(threshold=0.2, engine=engine)
    with caplog.at_level(logging.WARNING, logger="pkg.database.lifecycle.leaks"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await asyncio.sleep(0.4)
        async with engine.connect() as conn:  # returned in time: no warning
            await conn.execute(text("SELECT 1"))
        await asyncio.sleep(0.3)
    warnings = [r for r in caplog.records if "held longer than" in r.getMessage()]
    assert len(warnings) == 1
    assert "test_leaks.py" in warnings[0].getMessage()


async def test_one_timer_warns_each_late_holder_once(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """The tracker keeps one timer, not one per checkout: a holder that arrives while the
    timer waits for an earlier one is still warned about, once, when its own time is up."""
    configure_leak_tracking(threshold=0.3, engine=engine)
    first_in, second_in, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hold(name: str, entered: asyncio.Event) -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            entered.set()
            await release.wait()

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if "held longer than" in r.getMessage()]

    with caplog.at_level(logging.WARNING, logger="pkg.database.lifecycle.leaks"):
        tasks = [asyncio.create_task(hold("first-holder", first_in), name="first-holder")]
        await first_in.wait()
        await asyncio.sleep(0.1)  # staggered: the second holder's deadline is later
        tasks.append(asyncio.create_task(hold("second-holder", second_in), name="second-holder"))
        await second_in.wait()
        for _ in range(200):  # poll until both deadlines passed (bounded)
            if len(warned()) >= 2:
                break
            await asyncio.sleep(0.02)
        release.set()
        await asyncio.gather(*tasks)
    messages = warned()
    assert len(messages) == 2
    assert "first-holder" in messages[0] and "second-holder" in messages[1]


async def test_tracking_off_still_counts_but_skips_owner(engine: AsyncEngine) -> None:
    configure_leak_tracking(enabled=False, engine=engine)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        [held] = checked_out_connections(engine)
        assert held.task is None and held.site is None
    assert checked_out_connections(engine) == []


async def test_assert_helper_names_the_owner(engine: AsyncEngine) -> None:
    assert_no_checked_out_connections(engine)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        with pytest.raises(AssertionError, match=r"1 out .*test_leaks\.py"):
            assert_no_checked_out_connections(engine)
    assert_no_checked_out_connections(engine)


PLUMBING = """
async def hold(engine, acquired, release):
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        acquired.set()
        await release.wait()
"""


async def test_the_apps_plumbing_is_skipped_when_naming_the_owner(engine: AsyncEngine) -> None:
    """``plumbing=`` names the app's own session helpers: the owner is their caller."""
    helpers: dict[str, object] = {"__name__": "app_db_plumbing", "text": text}
    exec(PLUMBING, helpers)
    hold = helpers["hold"]
    acquired, release = asyncio.Event(), asyncio.Event()

    async def handler() -> None:
        await hold(engine, acquired, release)  # type: ignore[operator]

    for plumbing, expected in (((), "in hold"), (("app_db_plumbing",), "in handler")):
        configure_leak_tracking(plumbing=plumbing)
        acquired.clear(), release.clear()
        task = asyncio.create_task(handler())
        try:
            await acquired.wait()
            [held] = checked_out_connections(engine)
            assert held.site is not None and held.site.endswith(expected), held.site
        finally:
            release.set()
            await task
            reset_leak_tracking()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_lowered_leak_threshold_applies_to_the_next_holder(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """One sweep timer per tracker: after a checkout under a 30 s threshold the sweep is due
    in 30 s; a holder after the threshold is lowered still gets its warning in time."""
    configure_leak_tracking(threshold=30.0, engine=engine)
    async with engine.connect() as conn:  # under the 30 s threshold: a sweep in 30 s
        await conn.execute(text("SELECT 1"))
    configure_leak_tracking(threshold=0.2, engine=engine)
    with caplog.at_level(logging.WARNING, logger="pkg.database.lifecycle.leaks"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            for _ in range(75):  # hold 1.5 s, polling for the warning (bounded)
                if any("held longer than" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.02)
    assert [r for r in caplog.records if "held longer than" in r.getMessage()], "no overdue warning"
