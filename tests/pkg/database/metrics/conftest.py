"""Fixtures for the metrics tests: a private Prometheus registry with the kit's exporter,
and a unique ``engine`` label per test (so a test reads only its own series)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from pkg.database.metrics import install_prometheus, reset_metrics


@dataclass
class Prom:
    """Read the kit's series of one engine label from a private registry."""

    registry: CollectorRegistry
    engine: str

    def value(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(name, {"engine": self.engine, **labels})
        return 0.0 if found is None else found

    def count(self, histogram: str, **labels: str) -> float:
        return self.value(f"{histogram}_count", **labels)

    def queries(self, operation: str = "SELECT", outcome: str = "ok") -> float:
        return self.count("kit_db_query_duration_seconds", operation=operation, outcome=outcome)

    def connections(self, state: str) -> float:
        return self.value("kit_db_pool_connections", state=state)


@pytest.fixture
def label() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def prom(label: str) -> Iterator[Prom]:
    """The Prometheus exporter on a fresh registry; every hook removed afterwards."""
    registry = CollectorRegistry()
    install_prometheus(registry)
    try:
        yield Prom(registry, label)
    finally:
        reset_metrics()
