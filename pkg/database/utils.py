"""Leaf utilities shared by every layer: the orjson codec, URL masking, the pooler marker.

Imports nothing of the kit, so any module may use it without creating a cycle.

Example::

    json_loads(json_dumps({"a": 1}))            # {"a": 1}
    mask_url("postgresql://app:secret@db/app")  # "postgresql://app:***@db/app"
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.engine import URL, Connection, Engine, make_url

__all__ = ["POOLER_OPTION", "behind_pooler", "json_dumps", "json_loads", "mask_url"]

POOLER_OPTION = "kit_pgbouncer"  # engine execution option that marks an engine behind PgBouncer


def json_dumps(value: Any) -> str:
    """orjson encoder returning ``str``, as SQLAlchemy's JSON types expect."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def json_loads(value: str | bytes) -> Any:
    """orjson decoder; accepts ``str`` or ``bytes``."""
    return orjson.loads(value)


def mask_url(url: str | URL) -> str:
    """Render a URL with its password replaced by ``***``, safe for logs."""
    return make_url(url).render_as_string(hide_password=True)


def behind_pooler(bind: Engine | Connection) -> bool:
    """True when ``bind`` was created with ``pgbouncer=`` (a transaction pooler in front)."""
    return bind.get_execution_options().get(POOLER_OPTION) is not None
