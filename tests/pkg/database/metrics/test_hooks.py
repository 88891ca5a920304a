"""The plain hook API: typed events, nothing attached without a hook, failures contained,
bounded labels, and one statement timing point shared with the slow-query log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from pkg.database import Database, new_async_engine, query_stats
from pkg.database.errors import ConfigurationError
from pkg.database.metrics import (
    ConnectionCheckedIn,
    ConnectionCheckedOut,
    ConnectionClosed,
    ConnectionCreated,
    MetricsEvent,
    PoolCapacity,
    QueryExecuted,
    ReplicaLag,
    RouteDecided,
    add_metrics_hook,
    classify_operation,
    emit_metrics_event,
    metered_engines,
    metrics_hooks,
    remove_metrics_hook,
    reset_metrics,
)


@pytest.fixture
def events() -> Iterator[list[MetricsEvent]]:
    seen: list[MetricsEvent] = []
    add_metrics_hook(seen.append)
    try:
        yield seen
    finally:
        reset_metrics()


def sqlite_url(tmp_path: Path, name: str = "m.db") -> str:
    return f"sqlite+aiosqlite:///{tmp_path / name}"


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("SELECT 1", "SELECT"),
        ("  \n\tselect * from t", "SELECT"),
        ("(SELECT 1) UNION (SELECT 2)", "SELECT"),
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("update t set a = 1", "UPDATE"),
        ("DELETE FROM t", "DELETE"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "OTHER"),
        ("SELECTED", "OTHER"),
        ("BEGIN", "OTHER"),
        ("", "OTHER"),
    ],
)
def test_operation_comes_from_the_first_keyword(statement: str, operation: str) -> None:
    assert classify_operation(statement) == operation


async def test_a_hook_receives_typed_events_without_sql(tmp_path: Path, events: list[MetricsEvent]) -> None:
    engine = new_async_engine(sqlite_url(tmp_path), metrics_name="hooked", slow_query_threshold=0.0)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 'secret-literal'"))
    finally:
        await engine.dispose()
    kinds = [type(e) for e in events if getattr(e, "engine", None) == "hooked"]
    assert kinds[0] is PoolCapacity and ConnectionCreated in kinds
    assert kinds.count(ConnectionCheckedOut) == kinds.count(ConnectionCheckedIn) == 1
    assert ConnectionClosed in kinds  # dispose closed the idle connection
    queries = [e for e in events if isinstance(e, QueryExecuted) and e.engine == "hooked"]
    last = queries[-1]
    assert (last.operation, last.outcome, last.slow, last.system) == ("SELECT", "ok", True, "sqlite")
    assert all("secret" not in repr(e) and str(tmp_path) not in repr(e) for e in events)


async def test_nothing_is_attached_while_no_hook_exists(tmp_path: Path) -> None:
    reset_metrics()
    engine = new_async_engine(sqlite_url(tmp_path), slow_query_threshold=None)
    try:
        sync = engine.sync_engine
        assert not _kit_listeners(sync) and sync.pool.observer is None  # type: ignore[attr-defined]
        seen: list[MetricsEvent] = []
        add_metrics_hook(seen.append)
        assert _kit_listeners(sync)  # switched on for an engine that already existed
        assert sync.pool.observer is not None  # type: ignore[attr-defined]
        remove_metrics_hook(seen.append)
        assert not _kit_listeners(sync) and metrics_hooks() == ()
        assert sync.pool.observer is None  # type: ignore[attr-defined]
        heard = len(seen)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        assert len(seen) == heard  # nothing reported once the hook is gone
        assert query_stats(engine).statements >= 1  # the slow-query counters still run
    finally:
        await engine.dispose()
        reset_metrics()


def _listeners(sync: object, name: str) -> list[object]:
    return list(getattr(sync.pool.dispatch, name))  # type: ignore[attr-defined]


def _kit_listeners(sync: object) -> list[object]:
    return [fn for fn in _listeners(sync, "close") if "EngineMetrics" in repr(fn)]


async def test_connections_open_before_the_hook_are_adopted(tmp_path: Path) -> None:
    reset_metrics()
    engine = new_async_engine(sqlite_url(tmp_path), metrics_name="late", slow_query_threshold=None)
    seen: list[MetricsEvent] = []
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # one idle connection, opened unmetered
        add_metrics_hook(seen.append)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
        reset_metrics()
    created = [e for e in seen if isinstance(e, ConnectionCreated)]
    assert created == [ConnectionCreated("late", adopted=True)]
    assert sum(isinstance(e, ConnectionCheckedIn) for e in seen) == 1
    assert sum(isinstance(e, ConnectionClosed) for e in seen) == 1


async def test_a_failing_hook_is_logged_and_never_breaks_the_query(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, events: list[MetricsEvent]
) -> None:
    def broken(event: MetricsEvent) -> None:
        raise RuntimeError("hook bug")

    add_metrics_hook(broken)
    add_metrics_hook(broken)  # idempotent
    assert metrics_hooks().count(broken) == 1
    engine = new_async_engine(sqlite_url(tmp_path), slow_query_threshold=None)
    caplog.set_level(logging.ERROR, logger="pkg.database.metrics")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 7"))).scalar_one() == 7
    finally:
        await engine.dispose()
    assert any("metrics hook" in r.getMessage() for r in caplog.records)
    assert any(isinstance(e, QueryExecuted) for e in events)  # the other hook still got it


def test_a_hook_must_be_callable() -> None:
    with pytest.raises(ConfigurationError):
        add_metrics_hook("not a hook")  # type: ignore[arg-type]


def test_engine_labels_are_bounded(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="metrics_name"):
        new_async_engine(sqlite_url(tmp_path), metrics_name="postgresql://user:pw@host/db")
    engine = new_async_engine(sqlite_url(tmp_path), application_name="billing api/v2")
    assert "billing_api_v2" in metered_engines()
    engine.sync_engine.dispose()


async def test_a_database_names_its_engines_primary_and_replica(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path), read_url=sqlite_url(tmp_path, "replica.db"))
    try:
        assert {"primary", "replica-0"} <= set(metered_engines())
    finally:
        await db.close()


def test_routing_and_lag_have_a_hook_point(events: list[MetricsEvent]) -> None:
    emit_metrics_event(RouteDecided("primary", "replica"))
    emit_metrics_event(ReplicaLag("replica-0", 0.25))
    assert events[-2:] == [RouteDecided("primary", "replica"), ReplicaLag("replica-0", 0.25)]


class _Sink:
    """An EngineSink that records its calls (and raises on checkout when told to)."""

    def __init__(self, calls: list[tuple[str, object]], fail: bool) -> None:
        self.calls, self.fail = calls, fail

    def checked_out(self, wait: float) -> None:
        self.calls.append(("checked_out", wait >= 0))
        if self.fail:
            raise RuntimeError("sink bug")

    def checked_in(self, use: float) -> None:
        self.calls.append(("checked_in", use >= 0))

    def query(self, operation: str, outcome: str, duration: float, slow: bool, error: str | None) -> None:
        self.calls.append(("query", (operation, outcome, error)))


class _BindingHook:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, object]] = []
        self.events: list[MetricsEvent] = []
        self.bound: list[tuple[str, str]] = []
        self.fail = fail

    def __call__(self, event: MetricsEvent) -> None:
        self.events.append(event)

    def bind_engine(self, engine: str, system: str) -> _Sink:
        self.bound.append((engine, system))
        return _Sink(self.calls, self.fail)


async def test_a_hook_with_bind_engine_gets_the_hot_path_as_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reset_metrics()
    hook, failing = _BindingHook(), _BindingHook(fail=True)
    add_metrics_hook(hook)
    add_metrics_hook(failing)
    engine = new_async_engine(sqlite_url(tmp_path), metrics_name="bound", slow_query_threshold=None)
    caplog.set_level(logging.ERROR, logger="pkg.database.metrics")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 3"))).scalar_one() == 3
    finally:
        await engine.dispose()
        reset_metrics()
    assert ("bound", "sqlite") in hook.bound
    assert hook.calls.count(("checked_out", True)) == hook.calls.count(("checked_in", True)) == 1
    assert ("query", ("SELECT", "ok", None)) in hook.calls
    hot = (ConnectionCheckedOut, ConnectionCheckedIn, QueryExecuted)
    mine = [e for e in hook.events if getattr(e, "engine", None) == "bound"]
    assert not any(isinstance(e, hot) for e in mine)  # no event objects on the hot path
    assert any(isinstance(e, ConnectionCreated) for e in mine)  # the rest still arrive as events
    assert failing.calls.count(("checked_in", True)) == 1  # its checkout raised, the rest went on
    assert any("metrics hook" in r.getMessage() for r in caplog.records)
