"""Result pages: one offset page (:class:`Page`) and one keyset page (:class:`KeysetPage`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["KeysetPage", "Page"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One offset page: ``items``, ``total`` rows, ``page`` (1-based), ``size``, ``pages``."""

    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return (self.total + self.size - 1) // self.size if self.size else 0


@dataclass(frozen=True, slots=True)
class KeysetPage(Generic[T]):
    """One keyset page: ``items`` and ``next_cursor`` (None on the last page)."""

    items: list[T]
    next_cursor: str | None
