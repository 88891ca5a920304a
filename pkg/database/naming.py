"""Constraint and index names that are the same on every backend, and short enough for all.

PostgreSQL cuts identifiers at 63 characters, MariaDB/MySQL at 64, Oracle at 128.
SQLAlchemy shortens a too-long convention name per dialect, so one model would get
*different* names on each backend, and a migration written on one would not find the
constraint on another. Here every name is shortened once, before any dialect sees it, to
``MAX_NAME_LENGTH`` (the smallest limit): the first characters, ``_``, and 8 hex digits of
the full name's SHA-1, so it stays deterministic and distinct::

    limit_name("ix_orders_" + "_".join(columns))   # -> "ix_orders_customer_id_..._3f2a9c1d"

``NAMING_CONVENTION`` keeps the usual shapes (``uq_users_email``, ``ix_users_username``,
``fk_orders_user_id_users``, ``pk_users``, ``ck_users_<name>``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql.naming import ConventionDict

__all__ = ["MAX_NAME_LENGTH", "NAMING_CONVENTION", "TEMPLATES", "limit_name"]

MAX_NAME_LENGTH = 63  # PostgreSQL 63, MariaDB/MySQL 64, Oracle 128: one name fits all
_DIGEST_LENGTH = 8

TEMPLATES: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def limit_name(name: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """``name`` itself when it fits, else its head plus ``_`` and a short hash of all of it."""
    if len(name) <= max_length:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:_DIGEST_LENGTH]
    return f"{name[: max_length - _DIGEST_LENGTH - 1]}_{digest}"


def _limited(template: str) -> Callable[[Any, Table], str]:
    """A convention token: ``template`` rendered with SQLAlchemy's own tokens, then limited."""

    def render(constraint: Any, table: Table) -> str:
        return limit_name(template % ConventionDict(constraint, table, {}))  # type: ignore[no-untyped-call]

    return render


def _convention() -> dict[str, Any]:
    # SQLAlchemy re-applies a convention to an explicitly named constraint only when the
    # template mentions "constraint_name", so the check-constraint token carries it.
    tokens = {kind: f"limited_{kind}_name" for kind in TEMPLATES}
    tokens["ck"] = "limited_ck_constraint_name"
    convention: dict[str, Any] = {tokens[kind]: _limited(t) for kind, t in TEMPLATES.items()}
    convention.update({kind: f"%({token})s" for kind, token in tokens.items()})
    return convention


NAMING_CONVENTION: dict[str, Any] = _convention()
