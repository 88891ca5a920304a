"""The ``kit_db_*`` series of one engine label, in two stores behind the same methods.

* :class:`LocalSeries` (one process, the default): plain Python numbers and bucket counts,
  turned into metric families only when scraped, by :class:`LocalCollector`. The hot path
  (checkout, checkin, statement) appends one float to a deque, with no lock (deque appends
  are thread-safe, and keep their order); the observations are counted in batches (sorted, one ``bisect`` per
  bucket) under the series lock, by the writer every :data:`FOLD_AT` of them and by every
  scrape, so each scrape is exact. The rarer events update numbers under that lock.
  ``prometheus_client``'s own objects cost several locked Python calls per observation.
* :class:`ClientSeries` (``PROMETHEUS_MULTIPROC_DIR`` set): ``prometheus_client`` label
  children, since every value must reach this process's files for another process's
  scrape to sum them.

Both expose the same family names, types, labels and buckets, so a scrape reads the same.

Example::

    series = LocalSeries("primary")
    series.created(adopted=False)
    series.checked_out(0.0002)
    registry.register(LocalCollector(lambda: {"primary": series}))
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from pkg.database.metrics.classify import POOL_TIMEOUT_ERROR

__all__ = [
    "FAMILIES",
    "FOLD_AT",
    "QUERY_BUCKETS",
    "USE_BUCKETS",
    "WAIT_BUCKETS",
    "ClientSeries",
    "LocalCollector",
    "LocalSeries",
    "client_metrics",
]

PREFIX = "kit_db_"
QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)
FOLD_AT = 1024  # observations a histogram buffers before its writer counts them
USE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

# name (without prefix) -> (type, help, labels after ``engine``, buckets)
FAMILIES: dict[str, tuple[str, str, tuple[str, ...], tuple[float, ...]]] = {
    "pool_connections": ("gauge", "Open connections by state", ("state",), ()),
    "pool_max_connections": ("gauge", "Most connections the pool opens", (), ()),
    "pool_pending_requests": ("gauge", "Requests waiting for a connection", (), ()),
    "pool_timeouts": ("counter", "Checkouts that timed out", (), ()),
    "pool_wait_seconds": ("histogram", "Wait for a connection", (), WAIT_BUCKETS),
    "pool_use_seconds": ("histogram", "Checkout to checkin", (), USE_BUCKETS),
    "pool_connections_created": ("counter", "Connections opened", (), ()),
    "pool_invalidations": ("counter", "Connections invalidated, by reason", ("reason",), ()),
    "query_duration_seconds": ("histogram", "Statement duration", ("operation", "outcome"), QUERY_BUCKETS),
    "slow_queries": ("counter", "Statements past the slow threshold", ("operation",), ()),
    "errors": ("counter", "Errors by the kit's error class", ("error",), ()),
    "routing_decisions": ("counter", "Sessions routed, by target", ("target",), ()),
    "replica_lag_seconds": ("gauge", "Replication lag", (), ()),
}


def _drain(pending: deque[float]) -> list[float]:
    """What ``pending`` holds now, in order (appends meanwhile stay for the next drain)."""
    return [pending.popleft() for _ in range(len(pending))]


class Histogram:
    """Bucket counts (not cumulative; the last is +Inf) and the sum of one histogram series,
    plus the observations not counted yet: ``pending`` (a deque: its appends are thread-safe,
    so the hot path takes no lock), counted by :meth:`fold` under the series lock."""

    __slots__ = ("bounds", "counts", "pending", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.pending: deque[float] = deque()

    def fold(self) -> None:
        """Count the pending observations (the caller holds the series lock)."""
        self.add(_drain(self.pending))

    def add(self, values: list[float]) -> None:
        """Count ``values`` (sorted here, one ``bisect`` per bucket)."""
        if not values:
            return
        values.sort()
        counts, start = self.counts, 0
        for index, bound in enumerate(self.bounds):
            end = bisect_right(values, bound, start)  # values <= bound, as le means
            counts[index] += end - start
            start = end
        counts[-1] += len(values) - start
        self.total += math.fsum(values)

    def count(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
        return out


class LocalSeries:
    """One engine label's values as plain numbers (single-process mode).

    The hot path (checkout, checkin, a statement that is neither slow nor failed) appends one
    float to a deque and takes no lock: checkouts and checkins share one deque, in the order
    they happened, so a scrape counts a consistent prefix of them (in use = checkouts -
    checkins, never a checkin before its checkout). The writer folds past :data:`FOLD_AT`
    observations, every scrape folds them all; idle = open - in use.
    """

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.open = self.pending = self.max = self.timeouts = self.created_total = 0
        self.used_before_fork = 0  # checkouts - checkins inherited from the parent process
        self.lag: float | None = None
        self.wait = Histogram(WAIT_BUCKETS)
        self.use = Histogram(USE_BUCKETS)
        self._pool: deque[float] = deque()  # checkouts (wait, >= +0.0) and checkins (-use, <= -0.0)
        self.queries: dict[tuple[str, str], Histogram] = {}
        self._ok: dict[str, deque[float]] = {}  # operation -> pending of (operation, "ok")
        self.counts: dict[tuple[str, str], int] = {}  # (family, label value) -> total

    # -- hot path (the EngineSink methods) ----------------------------------------------
    def checked_out(self, wait: float) -> None:
        pool = self._pool
        pool.append(wait if wait > 0.0 else 0.0)  # sign bit clear: a checkout after ``wait``
        if len(pool) > FOLD_AT:
            self.fold()

    def checked_in(self, use: float) -> None:
        pool = self._pool
        pool.append(-use if use > 0.0 else -0.0)  # sign bit set: a checkin after ``use``
        if len(pool) > FOLD_AT:
            self.fold()

    def query(self, operation: str, outcome: str, duration: float, slow: bool, error: str | None) -> None:
        if outcome == "ok" and not slow:
            pending = self._ok.get(operation)
            if pending is not None:
                pending.append(duration)
                if len(pending) > FOLD_AT:
                    self.fold()
                return
        with self.lock:
            histogram = self.queries.get((operation, outcome))
            if histogram is None:
                histogram = self.queries[operation, outcome] = Histogram(QUERY_BUCKETS)
                if outcome == "ok":
                    self._ok[operation] = histogram.pending
            histogram.pending.append(duration)
            if slow:
                self._count("slow_queries", operation)
            if error is not None:
                self._count("errors", error)

    def fold(self) -> None:
        """Count every pending observation."""
        with self.lock:
            self._fold()

    def _fold(self) -> None:
        events = _drain(self._pool)  # one queue, in order: in use never counts a checkin first
        if events:
            events.sort()  # checkins (< 0) first, then zeros of either sign, then checkouts
            low, high = bisect_left(events, 0.0), bisect_right(events, 0.0)
            uses, waits = [-value for value in events[:low]], events[high:]
            for zero in events[low:high]:  # -0.0 == 0.0: the sign bit tells them apart
                (uses if math.copysign(1.0, zero) < 0.0 else waits).append(0.0)
            self.use.add(uses)
            self.wait.add(waits)
        for histogram in list(self.queries.values()):
            histogram.fold()

    # -- the rest -----------------------------------------------------------------------
    def _count(self, family: str, value: str) -> None:
        key = (family, value)
        self.counts[key] = self.counts.get(key, 0) + 1

    def created(self, adopted: bool) -> None:
        with self.lock:
            self.created_total += 0 if adopted else 1
            self.open += 1

    def closed(self) -> None:
        with self.lock:
            self.open -= 1

    def invalidated(self, reason: str) -> None:
        with self.lock:
            self._count("pool_invalidations", reason)

    def waiting(self, delta: int) -> None:
        with self.lock:
            self.pending += delta

    def timed_out(self) -> None:
        with self.lock:
            self.timeouts += 1
            self._count("errors", POOL_TIMEOUT_ERROR)

    def capacity(self, delta: int) -> None:
        with self.lock:
            self.max += delta

    def routed(self, target: str) -> None:
        with self.lock:
            self._count("routing_decisions", target)

    def replica_lag(self, seconds: float) -> None:
        with self.lock:
            self.lag = seconds

    def after_fork(self) -> None:
        """A forked child: no connection and no waiter yet; a lock held at the fork is dropped."""
        self.lock = threading.Lock()
        self._fold()
        self.open = self.pending = 0
        self.used_before_fork = self.wait.count() - self.use.count()

    # -- scrape -------------------------------------------------------------------------
    def samples(self) -> Iterator[tuple[str, tuple[str, ...], Any]]:
        """``(family, label values after engine, value or Histogram copy)``, read under the lock."""
        with self.lock:
            self._fold()
            used = self.wait.count() - self.use.count() - self.used_before_fork
            rows: list[tuple[str, tuple[str, ...], Any]] = [
                ("pool_connections", ("idle",), self.open - used),
                ("pool_connections", ("used",), used),
                ("pool_max_connections", (), self.max),
                ("pool_pending_requests", (), self.pending),
                ("pool_timeouts", (), self.timeouts),
                ("pool_connections_created", (), self.created_total),
                ("pool_wait_seconds", (), _copy(self.wait)),
                ("pool_use_seconds", (), _copy(self.use)),
            ]
            rows += [("query_duration_seconds", key, _copy(h)) for key, h in self.queries.items()]
            rows += [(family, (value,), count) for (family, value), count in self.counts.items()]
            if self.lag is not None:
                rows.append(("replica_lag_seconds", (), self.lag))
        return iter(rows)


def _copy(histogram: Histogram) -> Histogram:
    copy = Histogram(histogram.bounds)
    copy.counts, copy.total = list(histogram.counts), histogram.total
    return copy


class LocalCollector:
    """A custom collector: the :class:`LocalSeries` of every engine label, read at scrape."""

    def __init__(self, series: Callable[[], Mapping[str, LocalSeries]]) -> None:
        self._series = series

    def describe(self) -> list[Metric]:
        return [_family(name) for name in FAMILIES]

    def collect(self) -> list[Metric]:
        families = {name: _family(name) for name in FAMILIES}
        for engine, series in sorted(self._series().items()):
            for name, labels, value in series.samples():
                family: Any = families[name]
                if isinstance(value, Histogram):
                    family.add_metric([engine, *labels], value.buckets(), value.total)
                else:
                    family.add_metric([engine, *labels], float(value))
        return list(families.values())


def _family(name: str) -> Metric:
    kind, doc, labels, _ = FAMILIES[name]
    full, names = PREFIX + name, ["engine", *labels]
    if kind == "gauge":
        return GaugeMetricFamily(full, doc, labels=names)
    if kind == "counter":
        return CounterMetricFamily(full, doc, labels=names)
    return HistogramMetricFamily(full, doc, labels=names)


class ClientSeries:
    """One engine label's values as ``prometheus_client`` children (multiprocess mode)."""

    def __init__(self, engine: str, metrics: Mapping[str, Any]) -> None:
        self.engine = engine
        self._metrics = metrics
        self._children: dict[tuple[str, ...], Any] = {}
        self._capacity = 0
        self._idle = self._child("pool_connections", "idle")
        self._used = self._child("pool_connections", "used")
        self._wait, self._use = self._child("pool_wait_seconds"), self._child("pool_use_seconds")

    def _child(self, family: str, *labels: str) -> Any:
        key = (family, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._metrics[family].labels(self.engine, *labels)
        return child

    def checked_out(self, wait: float) -> None:
        self._idle.dec()
        self._used.inc()
        self._wait.observe(wait)

    def checked_in(self, use: float) -> None:
        self._used.dec()
        self._idle.inc()
        self._use.observe(use)

    def query(self, operation: str, outcome: str, duration: float, slow: bool, error: str | None) -> None:
        self._child("query_duration_seconds", operation, outcome).observe(duration)
        if slow:
            self._child("slow_queries", operation).inc()
        if error is not None:
            self._child("errors", error).inc()

    def created(self, adopted: bool) -> None:
        if not adopted:
            self._child("pool_connections_created").inc()
        self._idle.inc()

    def closed(self) -> None:
        self._idle.dec()

    def invalidated(self, reason: str) -> None:
        self._child("pool_invalidations", reason).inc()

    def waiting(self, delta: int) -> None:
        self._child("pool_pending_requests").inc(delta)

    def timed_out(self) -> None:
        self._child("pool_timeouts").inc()
        self._child("errors", POOL_TIMEOUT_ERROR).inc()

    def capacity(self, delta: int) -> None:
        self._capacity += delta
        self._child("pool_max_connections").inc(delta)

    def routed(self, target: str) -> None:
        self._child("routing_decisions", target).inc()

    def replica_lag(self, seconds: float) -> None:
        self._child("replica_lag_seconds").set(seconds)

    def after_fork(self) -> None:
        """The child's files start at zero (prometheus_client sees the new pid): write the
        capacity again; connections and waiters are zero already."""
        self._child("pool_max_connections").set(self._capacity)


def client_metrics(registry: Any) -> dict[str, Any]:
    """The ``prometheus_client`` metric objects of :data:`FAMILIES`, registered on ``registry``."""
    from prometheus_client import Counter, Gauge
    from prometheus_client import Histogram as ClientHistogram

    metrics: dict[str, Any] = {}
    for name, (kind, doc, labels, buckets) in FAMILIES.items():
        names: Sequence[str] = ["engine", *labels]
        common: dict[str, Any] = {"namespace": "kit_db", "registry": registry}
        if kind == "gauge":
            mode: Literal["livemax", "livesum"] = "livemax" if name == "replica_lag_seconds" else "livesum"
            metrics[name] = Gauge(name, doc, names, multiprocess_mode=mode, **common)
        elif kind == "counter":
            metrics[name] = Counter(name, doc, names, **common)
        else:
            metrics[name] = ClientHistogram(name, doc, names, buckets=buckets, **common)
    return metrics
