"""Which replicas to read from: :class:`ReplicaSpec` and the ``DB_READ_URLS`` syntax.

``DB_READ_URLS`` is a comma-separated list; each entry is ``[name=]url[*weight]``::

    postgresql://app@replica-a:5432/app*3, postgresql://app@replica-b:5432/app
    east=postgresql://app@10.0.0.7/app*2, west=postgresql://app@10.0.1.7/app*1

``weight`` (default 1) is the relative share of read sessions a replica gets; ``name``
(default ``replica-0``, ``replica-1`` ...) labels it in logs, ``pool_status()`` and metrics.
A password holding ``,`` or ``*`` is percent-encoded in the URL (``%2C``, ``%2A``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url

from pkg.database.errors import ConfigurationError

__all__ = ["ReplicaSpec", "normalize_replicas", "parse_read_urls"]

_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_NAMED = re.compile(r"^([A-Za-z0-9_.:-]{1,64})=(?=[A-Za-z][\w+.-]*://)")
_WEIGHT = re.compile(r"\*([^*/@?]*)$")  # a trailing "*..." is always read as the weight


@dataclass(frozen=True, slots=True)
class ReplicaSpec:
    """One read replica: its URL, relative ``weight`` (> 0) and a ``name`` for logs and status."""

    url: str | URL
    weight: float = 1.0
    name: str | None = None

    def __post_init__(self) -> None:
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise ConfigurationError(
                f"replica weight must be a positive number, not {weight!r}", key="weight"
            )
        if weight <= 0:
            raise ConfigurationError(f"replica weight must be > 0, not {weight!r}", key="weight")
        if self.name is not None and not _NAME.fullmatch(self.name):
            raise ConfigurationError(
                f"replica name {self.name!r}: use 1-64 letters, digits or _.:-", key="name"
            )


def _entry(raw: str, key: str) -> ReplicaSpec:
    text, name, weight = raw.strip(), None, 1.0
    named = _NAMED.match(text)
    if named:
        name, text = named.group(1), text[named.end() :]
    weighted = _WEIGHT.search(text)
    if weighted:
        try:
            weight = float(weighted.group(1))
        except ValueError:
            raise ConfigurationError(f"{key}: weight must be a number > 0 after '*'", key=key) from None
        text = text[: weighted.start()].strip()
    try:
        url = make_url(text)
    except Exception as exc:  # sqlalchemy ArgumentError / ValueError: say which entry, masked
        raise ConfigurationError(f"{key}: an entry is not a database URL", key=key) from exc
    try:
        return ReplicaSpec(url, weight, name)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{key}: {exc}", key=key) from exc


def parse_read_urls(text: str, *, key: str = "DB_READ_URLS") -> list[ReplicaSpec]:
    """``[name=]url[*weight]`` entries, comma-separated (see the module doc); empty: none."""
    return [_entry(part, key) for part in text.split(",") if part.strip()]


def normalize_replicas(replicas: Iterable[str | URL | ReplicaSpec]) -> list[ReplicaSpec]:
    """Specs with a unique name each (``replica-N`` by position when not given)."""
    specs = [r if isinstance(r, ReplicaSpec) else ReplicaSpec(r) for r in replicas]
    named: list[ReplicaSpec] = []
    for index, spec in enumerate(specs):
        named.append(spec if spec.name else ReplicaSpec(spec.url, spec.weight, f"replica-{index}"))
    _check_unique(named)
    return named


def _check_unique(specs: Sequence[ReplicaSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        assert spec.name is not None
        if spec.name in seen or spec.name == "primary":
            raise ConfigurationError(f"replica name {spec.name!r} used twice (or 'primary')", key="name")
        seen.add(spec.name)
