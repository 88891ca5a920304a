"""The kit's public API: what an application touches.

Example::

    from pkg.database import BaseDao, new_async_engine, new_async_session_maker

    class UserDao(BaseDao[User]):
        model_cls = User

    engine = new_async_engine("sqlite+aiosqlite:///app.db")
    users = UserDao(session_provider=new_async_session_maker(engine))
    page = await users.query().filter(is_active=True).order_by("-created_at").page(1, 50)

The names, by job:

* engines and databases: ``new_async_engine``, ``new_async_session_maker``, ``Database``,
  ``CloseReport``;
* transactions: ``SessionProvider``, ``transaction``, ``execute_transaction`` (with
  ``retries=``), ``retry_transaction``, ``acting_as``, ``current_actor``;
* data access: ``BaseDao``, ``QueryBuilder``, ``Page``, ``KeysetPage``;
* models and types: ``Base``, ``TimestampMixin``, ``SoftDeleteMixin``, ``VersionMixin``,
  ``AuditMixin``, ``NAMING_CONVENTION``, ``JSONType``, ``UTCDateTime``, ``BigIntPK``,
  ``utcnow``;
* monitoring: ``pool_status``, ``query_stats``, ``QueryStats``, ``attach_query_monitor``;
* metrics (every engine's pool and query events, see :mod:`pkg.database.metrics`):
  ``add_metrics_hook``, ``remove_metrics_hook``;
* migrations (Alembic ``env.py``): ``migration_lock``, ``autogenerate_options``,
  ``render_kit_type``;
* utilities: ``mask_url``, ``json_dumps``, ``json_loads``.

Public submodules: :mod:`pkg.database.errors` (every error the kit raises, rooted at
``DatabaseError``), :mod:`pkg.database.lifecycle` (shutdown, signals, leak tracking
knobs), :mod:`pkg.database.metrics` (metrics events and the Prometheus / OpenTelemetry
exporters) and :mod:`pkg.database.testing` (test helpers). Everything else is internal.
"""

from pkg.database.actor import acting_as, current_actor
from pkg.database.dao import BaseDao
from pkg.database.database import Database
from pkg.database.engine import new_async_engine, new_async_session_maker
from pkg.database.lifecycle.shutdown import CloseReport
from pkg.database.metrics.hooks import add_metrics_hook, remove_metrics_hook
from pkg.database.migrations import autogenerate_options, migration_lock, render_kit_type
from pkg.database.models import (
    NAMING_CONVENTION,
    AuditMixin,
    Base,
    SoftDeleteMixin,
    TimestampMixin,
    VersionMixin,
)
from pkg.database.monitoring import QueryStats, attach_query_monitor, query_stats
from pkg.database.pool import pool_status
from pkg.database.query.builder import QueryBuilder
from pkg.database.query.pages import KeysetPage, Page
from pkg.database.retry import execute_transaction, retry_transaction
from pkg.database.transactions import SessionProvider, transaction
from pkg.database.types import BigIntPK, JSONType, UTCDateTime, utcnow
from pkg.database.utils import json_dumps, json_loads, mask_url

__all__ = [
    "NAMING_CONVENTION",
    "AuditMixin",
    "Base",
    "BaseDao",
    "BigIntPK",
    "CloseReport",
    "Database",
    "JSONType",
    "KeysetPage",
    "Page",
    "QueryBuilder",
    "QueryStats",
    "SessionProvider",
    "SoftDeleteMixin",
    "TimestampMixin",
    "UTCDateTime",
    "VersionMixin",
    "acting_as",
    "add_metrics_hook",
    "attach_query_monitor",
    "autogenerate_options",
    "current_actor",
    "execute_transaction",
    "json_dumps",
    "json_loads",
    "mask_url",
    "migration_lock",
    "new_async_engine",
    "new_async_session_maker",
    "pool_status",
    "query_stats",
    "remove_metrics_hook",
    "render_kit_type",
    "retry_transaction",
    "transaction",
    "utcnow",
]
