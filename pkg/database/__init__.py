"""The kit's public API: engines, sessions, DAOs, the query builder, types and errors.

Example::

    from pkg.database import BaseDao, new_async_engine, new_async_session_maker

    class UserDao(BaseDao[User]):
        model_cls = User

    engine = new_async_engine("sqlite+aiosqlite:///app.db")
    users = UserDao(session_provider=new_async_session_maker(engine))
    page = await users.query().filter(is_active=True).order_by("-created_at").page(1, 50)
"""

from pkg.database.cleanup import (
    configure_cleanup,
    dispose_all,
    register_engine,
    release_engine,
    reset_cleanup,
)
from pkg.database.context import (
    SessionProvider,
    acting_as,
    ambient_session,
    current_actor,
    execute_transaction,
    transaction,
)
from pkg.database.dao import BaseDao
from pkg.database.engine import json_dumps, json_loads, mask_url, new_async_engine, new_async_session_maker
from pkg.database.events import QueryStats, query_stats
from pkg.database.exceptions import (
    ConcurrencyConflictError,
    ConfigurationError,
    ConnectionLostError,
    DatabaseError,
    DatabaseNotInitializedError,
    DuplicateKeyError,
    IntegrityViolationError,
    InvalidCursorError,
    InvalidValueError,
    MultipleResultsError,
    NotFoundError,
    PoolTimeoutError,
    QueryError,
    StaleDataError,
    TransientDatabaseError,
    UnknownFieldError,
    UnsafeQueryError,
    translate_error,
)
from pkg.database.leaks import Checkout, checked_out_connections, configure_leak_tracking
from pkg.database.lifecycle import CloseReport, Database, session_scope
from pkg.database.models import (
    NAMING_CONVENTION,
    AuditMixin,
    Base,
    SoftDeleteMixin,
    TimestampMixin,
    VersionMixin,
)
from pkg.database.pagination import DEFAULT_CURSOR_SECRET, KeysetCodec, KeysetPage, Page
from pkg.database.pool import pool_status
from pkg.database.query import QueryBuilder
from pkg.database.shutdown import EngineCloseReport, close_engine
from pkg.database.signals import set_signal_handling, signal_handling_enabled
from pkg.database.types import BigIntPK, JSONType, UTCDateTime, utcnow

__all__ = [
    "DEFAULT_CURSOR_SECRET",
    "NAMING_CONVENTION",
    "AuditMixin",
    "Base",
    "BaseDao",
    "BigIntPK",
    "Checkout",
    "CloseReport",
    "ConcurrencyConflictError",
    "ConfigurationError",
    "ConnectionLostError",
    "Database",
    "DatabaseError",
    "DatabaseNotInitializedError",
    "DuplicateKeyError",
    "EngineCloseReport",
    "IntegrityViolationError",
    "InvalidCursorError",
    "InvalidValueError",
    "JSONType",
    "KeysetCodec",
    "KeysetPage",
    "MultipleResultsError",
    "NotFoundError",
    "Page",
    "PoolTimeoutError",
    "QueryBuilder",
    "QueryError",
    "QueryStats",
    "SessionProvider",
    "SoftDeleteMixin",
    "StaleDataError",
    "TimestampMixin",
    "TransientDatabaseError",
    "UTCDateTime",
    "UnknownFieldError",
    "UnsafeQueryError",
    "VersionMixin",
    "acting_as",
    "ambient_session",
    "checked_out_connections",
    "close_engine",
    "configure_cleanup",
    "configure_leak_tracking",
    "current_actor",
    "dispose_all",
    "execute_transaction",
    "json_dumps",
    "json_loads",
    "mask_url",
    "new_async_engine",
    "new_async_session_maker",
    "pool_status",
    "query_stats",
    "register_engine",
    "release_engine",
    "reset_cleanup",
    "session_scope",
    "set_signal_handling",
    "signal_handling_enabled",
    "transaction",
    "translate_error",
    "utcnow",
]
