"""OpenTelemetry: the database semantic conventions, exact counts, and no double counting
next to SQLAlchemy's own instrumentor."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sqlalchemy import text

from pkg.database.metrics import install_otel, reset_metrics
from pkg.database.metrics.otel import DURATION_BUCKETS, METER_NAME
from tests.conftest import Backend


class Reader:
    """Cumulative points of one meter scope, by instrument name and attributes."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def scopes(self) -> dict[str, dict[str, list[Any]]]:
        data = self.reader.get_metrics_data()
        found: dict[str, dict[str, list[Any]]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                names = found.setdefault(scope.scope.name, {})
                for metric in scope.metrics:
                    names.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def points(self, name: str, **attrs: str) -> list[Any]:
        points = self.scopes().get(METER_NAME, {}).get(name, [])
        return [p for p in points if all(p.attributes.get(k) == v for k, v in attrs.items())]

    def total(self, name: str, **attrs: str) -> float:
        return sum(getattr(p, "count", None) or getattr(p, "value", 0) for p in self.points(name, **attrs))


@pytest.fixture
def otel() -> Iterator[Reader]:
    reader = Reader()
    install_otel(reader.provider)
    try:
        yield reader
    finally:
        reset_metrics()
        reader.provider.shutdown()


POOL = "db.client.connection.pool.name"


async def test_semantic_convention_instruments_count_exactly(backend: Backend, otel: Reader) -> None:
    name = f"o-{uuid.uuid4().hex[:8]}"
    engine = backend.engine(metrics_name=name)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        op = {POOL: name, "db.operation.name": "SELECT", "db.system.name": engine.dialect.name}
        before = otel.total("db.client.operation.duration", **op)
        for _ in range(100):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert otel.total("db.client.operation.duration", **op) - before == 100
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(3):
                conn = await stack.enter_async_context(engine.connect())
                await conn.execute(text("SELECT 1"))
            state = "db.client.connection.state"
            assert otel.total("db.client.connection.count", **{POOL: name, state: "used"}) == 3
            assert otel.total("db.client.connection.count", **{POOL: name, state: "idle"}) == 0
        assert otel.total("db.client.connection.max", **{POOL: name}) == 15
        assert otel.total("db.client.connection.pending_requests", **{POOL: name}) == 0
        assert otel.total("db.client.connection.wait_time", **{POOL: name}) == 104
        assert otel.total("db.client.connection.use_time", **{POOL: name}) == 104
        point = otel.points("db.client.operation.duration", **op)[0]
        assert list(point.explicit_bounds) == DURATION_BUCKETS  # the convention's buckets, seconds
    finally:
        await engine.dispose()


async def test_a_failed_statement_carries_the_kits_error_type(backend: Backend, otel: Reader) -> None:
    name = f"o-{uuid.uuid4().hex[:8]}"
    engine = backend.engine(metrics_name=name)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the driver's error, translated elsewhere
            async with engine.connect() as conn:
                await conn.execute(text("SELECT * FROM no_such_table_here"))
    finally:
        await engine.dispose()
    assert otel.total("db.client.operation.duration", **{POOL: name, "error.type": "DriverError"}) == 1
    assert otel.total("kit.db.errors", **{POOL: name, "error.type": "DriverError"}) == 1


async def test_next_to_sqlalchemys_instrumentor_nothing_is_counted_twice(tmp_path, otel: Reader) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    from pkg.database import new_async_engine

    engine = new_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'i.db'}", metrics_name="both")
    instrumentor = SQLAlchemyInstrumentor()
    # engine=: the kit's engines exist before the instrumentor could wrap create_async_engine;
    # skip_dep_check: its declared range stops below SQLAlchemy 2.1 (it works on it).
    instrumentor.instrument(engine=engine.sync_engine, meter_provider=otel.provider, skip_dep_check=True)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        op = {POOL: "both", "db.operation.name": "SELECT"}
        before = otel.total("db.client.operation.duration", **op)
        for _ in range(100):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert otel.total("db.client.operation.duration", **op) - before == 100
        assert otel.total("db.client.connection.use_time", **{POOL: "both"}) == 101
    finally:
        instrumentor.uninstrument()
        await engine.dispose()
    scopes = otel.scopes()
    theirs = {n for scope, names in scopes.items() if scope != METER_NAME for n in names}
    assert "db.client.connections.usage" in theirs  # the instrumentor really ran on our engine
    assert theirs.isdisjoint(scopes[METER_NAME])  # no instrument name is shared
