"""Settings from ``configs/.env.{APP_ENV}`` and the process environment (environment wins).

Example::

    settings = load_settings("prod")      # reads configs/.env.prod, then os.environ
    engine_url = settings.database_url    # a sqlalchemy URL; password never printed

Nothing is read at import time; :func:`get_settings` caches one instance and
:func:`reset_settings` forgets it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pkg.database.errors import ConfigurationError
from pkg.database.routing import ReplicaSpec, parse_read_urls

__all__ = ["Settings", "get_settings", "load_settings", "reset_settings"]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "oracle": "oracle+oracledb",
    "sqlite": "sqlite+aiosqlite",
}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "oracle": 1521}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _number(key: str, raw: str, cast: Callable[[str], Any], kind: str) -> Any:
    try:
        value = cast(raw.strip())
    except ValueError:
        raise ConfigurationError(f"{key} must be {kind}, got {raw!r}", key=key) from None
    if value < 0:
        raise ConfigurationError(f"{key} must not be negative, got {raw!r}", key=key)
    return value


def _int(key: str, raw: str) -> int:
    return int(_number(key, raw, int, "an integer"))


def _float(key: str, raw: str) -> float:
    return float(_number(key, raw, float, "a number"))


def _bool(key: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise ConfigurationError(f"{key} must be true or false, got {raw!r}", key=key)


def _str(key: str, raw: str) -> str:
    return raw


def _pgbouncer(key: str, raw: str) -> str | None:
    value = raw.strip().lower()
    if value in ("", "off", "none", "false"):
        return None
    if value != "transaction":
        raise ConfigurationError(f"{key} must be transaction or off, got {raw!r}", key=key)
    return value


def _db_type(key: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in DRIVERS:
        valid = ", ".join(DRIVERS)
        raise ConfigurationError(f"{key} must be one of {valid}, got {raw!r}", key=key)
    return value


# env key -> (Settings attribute, parser)
_KEYS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "APP_ENV": ("app_env", _str),
    "DB_URL": ("db_url", _str),
    "DB_READ_URL": ("db_read_url", _str),
    "DB_READ_URLS": ("db_read_urls", _str),
    "DB_READ_REQUIRED": ("db_read_required", _bool),
    "DB_READ_STICKY": ("db_read_sticky", _float),
    "DB_REPLICA_MAX_LAG": ("db_replica_max_lag", _float),
    "DB_REPLICA_PROBE_INTERVAL": ("db_replica_probe_interval", _float),
    "DB_PGBOUNCER": ("db_pgbouncer", _pgbouncer),
    "DB_TYPE": ("db_type", _db_type),
    "DB_HOST": ("db_host", _str),
    "DB_PORT": ("db_port", _int),
    "DB_USERNAME": ("db_username", _str),
    "DB_PASSWORD": ("db_password", _str),
    "DB_DATABASE": ("db_database", _str),
    "DB_SERVICE_NAME": ("db_service_name", _str),
    "DB_ECHO": ("db_echo", _bool),
    "DB_POOL_SIZE": ("db_pool_size", _int),
    "DB_MAX_OVERFLOW": ("db_max_overflow", _int),
    "DB_POOL_TIMEOUT": ("db_pool_timeout", _float),
    "DB_POOL_RECYCLE": ("db_pool_recycle", _int),
    "DB_POOL_PRE_PING": ("db_pool_pre_ping", _bool),
    "DB_SLOW_QUERY_THRESHOLD": ("db_slow_query_threshold", _float),
    "DB_LOG_PARAMETERS": ("db_log_parameters", _bool),
    "DB_SHUTDOWN_TIMEOUT": ("db_shutdown_timeout", _float),
    "DB_APPLICATION_NAME": ("db_application_name", _str),
    "DB_LEAK_TRACKING": ("db_leak_tracking", _bool),
    "DB_LEAK_THRESHOLD": ("db_leak_threshold", _float),
    "DB_HANDLE_SIGNALS": ("db_handle_signals", _bool),
    "DB_DIRECT_URL": ("db_direct_url", _str),
    "DB_MIGRATION_LOCK_TIMEOUT": ("db_migration_lock_timeout", _float),
    "DB_MIGRATION_LOCK_WAIT": ("db_migration_lock_wait", _float),
    "APP_HOST": ("app_host", _str),
    "APP_PORT": ("app_port", _int),
    "APP_DRAIN_TIMEOUT": ("app_drain_timeout", _float),
    "APP_CREATE_TABLES": ("app_create_tables", _bool),
    "APP_MIGRATE_ON_START": ("app_migrate_on_start", _bool),
    "APP_DIAGNOSTICS": ("app_diagnostics", _bool),
    "APP_METRICS": ("app_metrics", _bool),
    "CELERY_BROKER_URL": ("celery_broker_url", _str),
    "CELERY_RESULT_BACKEND": ("celery_result_backend", _str),
    "CELERY_CONCURRENCY": ("celery_concurrency", _int),
    "LOG_LEVEL": ("log_level", _str),
}
_SECRET_ATTRS = {"db_password"}
_URL_ATTRS = {"db_url", "db_read_url", "db_direct_url", "celery_broker_url", "celery_result_backend"}


@dataclass(frozen=True)
class Settings:
    """Typed settings; ``repr`` masks the password, including inside URLs."""

    app_env: str = "dev"
    db_url: str | None = None
    db_read_url: str | None = None
    db_read_urls: str | None = None  # "[name=]url[*weight], ...": read replicas
    db_read_required: bool = False  # a replica down at start fails init instead of a WARNING
    db_read_sticky: float = 2.0  # seconds reads stay on the primary after a commit (no LSN)
    db_replica_max_lag: float = 30.0  # seconds; a replica further behind serves no reads
    db_replica_probe_interval: float = 5.0  # seconds between replica health probes
    db_pgbouncer: str | None = None  # "transaction": DB_URL / DB_READ_URL go through PgBouncer
    db_type: str = "sqlite"
    db_host: str = "127.0.0.1"
    db_port: int | None = None
    db_username: str | None = None
    db_password: str | None = None
    db_database: str | None = None
    db_service_name: str | None = None
    db_echo: bool = False
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_pool_timeout: float = 30.0
    db_pool_recycle: int = 1800
    db_pool_pre_ping: bool = True
    db_slow_query_threshold: float = 0.5
    db_log_parameters: bool = False
    db_shutdown_timeout: float = 10.0
    db_application_name: str = "async-data-kit"
    db_leak_tracking: bool = True
    db_leak_threshold: float = 30.0
    db_handle_signals: bool = True
    db_direct_url: str | None = None  # the server itself, bypassing PgBouncer: migrations
    db_migration_lock_timeout: float = 5.0  # seconds a migration statement waits for a lock
    db_migration_lock_wait: float = 120.0  # seconds an instance waits for another's migration
    app_host: str = "127.0.0.1"
    app_port: int = 8000
    app_drain_timeout: float = 10.0
    app_create_tables: bool = False  # create_all instead of migrations (tests, throwaway dbs)
    app_migrate_on_start: bool | None = None  # None: on for APP_ENV=dev only
    app_diagnostics: bool = False  # /diagnostics/* routes for drain drills; never in public
    app_metrics: bool = False  # Prometheus /metrics (web) and metrics in worker processes
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    celery_result_backend: str = "redis://127.0.0.1:6379/1"
    celery_concurrency: int = 2
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.db_pool_size < 1:
            raise ConfigurationError(
                f"DB_POOL_SIZE must be at least 1, got {self.db_pool_size}", key="DB_POOL_SIZE"
            )
        _ = self.database_url  # validate eagerly: bad config fails at load, not at first use
        _ = self.read_replicas
        for key in ("db_read_sticky", "db_replica_max_lag", "db_replica_probe_interval"):
            if getattr(self, key) < 0:
                raise ConfigurationError(f"{key.upper()} must be >= 0", key=key.upper())
        if self.db_pgbouncer and self.database_url.get_backend_name() != "postgresql":
            raise ConfigurationError("DB_PGBOUNCER applies to PostgreSQL only", key="DB_PGBOUNCER")
        _ = self.direct_database_url

    @property
    def database_url(self) -> URL:
        """The primary URL: ``DB_URL`` when set, else built from the ``DB_*`` parts."""
        if self.db_url:
            return _parse_url("DB_URL", self.db_url)
        return _build_url(self)

    @property
    def read_database_url(self) -> URL | None:
        """The replica URL from ``DB_READ_URL``, or None."""
        return _parse_url("DB_READ_URL", self.db_read_url) if self.db_read_url else None

    @property
    def read_replicas(self) -> list[ReplicaSpec]:
        """``DB_READ_URL`` (one replica) then the ``DB_READ_URLS`` entries, async drivers picked."""
        specs = [ReplicaSpec(self.read_database_url)] if self.read_database_url else []
        for spec in parse_read_urls(self.db_read_urls or ""):
            url = _parse_url("DB_READ_URLS", make_url(spec.url).render_as_string(hide_password=False))
            specs.append(ReplicaSpec(url, spec.weight, spec.name))
        return specs

    def routing_options(self) -> dict[str, float]:
        """Keyword arguments of the replica router (``Database(routing=...)``)."""
        return {
            "max_lag": self.db_replica_max_lag,
            "probe_interval": self.db_replica_probe_interval,
            "sticky_seconds": self.db_read_sticky,
        }

    @property
    def direct_database_url(self) -> URL | None:
        """The URL from ``DB_DIRECT_URL`` (bypassing PgBouncer, for migrations), or None."""
        return _parse_url("DB_DIRECT_URL", self.db_direct_url) if self.db_direct_url else None

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`pkg.database.new_async_engine`."""
        return {
            "echo": self.db_echo,
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
            "pool_recycle": self.db_pool_recycle,
            "pool_pre_ping": self.db_pool_pre_ping,
            "slow_query_threshold": self.db_slow_query_threshold,
            "log_parameters": self.db_log_parameters,
            "application_name": self.db_application_name,
            "pgbouncer": self.db_pgbouncer,
        }

    def masked(self) -> dict[str, Any]:
        """All settings as a dict, safe to log: passwords replaced by ``***``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_ATTRS and value:
                value = "***"
            elif f.name in _URL_ATTRS and value:
                value = _mask(value)
            elif f.name == "db_read_urls" and value:
                value = _mask_replicas(value)
            out[f.name] = value
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"Settings({inner})"

    __str__ = __repr__


def _mask_replicas(raw: str) -> str:
    try:
        specs = parse_read_urls(raw)
    except ConfigurationError:
        return "<unparsable url list>"
    return ", ".join(f"{s.name + '=' if s.name else ''}{_mask(str(s.url))}*{s.weight:g}" for s in specs)


def _mask(raw: str) -> str:
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable url>"


def _parse_url(key: str, raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigurationError(f"{key} is not a valid database URL", key=key) from None
    backend = url.get_backend_name()
    if backend not in DRIVERS:
        raise ConfigurationError(f"{key} names unsupported database {backend!r}", key=key)
    if "+" not in url.drivername:  # plain "postgresql://": pick the async driver
        url = url.set(drivername=DRIVERS[backend])
    return url


def _build_url(s: Settings) -> URL:
    if s.db_type == "sqlite":
        return URL.create(DRIVERS["sqlite"], database=s.db_database or ":memory:")
    if not s.db_database and not (s.db_type == "oracle" and s.db_service_name):
        raise ConfigurationError(f"DB_DATABASE is required for DB_TYPE={s.db_type}", key="DB_DATABASE")
    query = {"service_name": s.db_service_name} if s.db_service_name else {}
    return URL.create(
        DRIVERS[s.db_type],
        username=s.db_username or None,
        password=s.db_password or None,
        host=s.db_host,
        port=s.db_port or DEFAULT_PORTS[s.db_type],
        database=s.db_database or None,
        query=query,
    )


def _read_env_file(env: str, config_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    path = config_dir / f".env.{env}"
    if path.is_file():
        return {k: v for k, v in dotenv_values(path).items() if v is not None}
    if "DB_URL" in environ or "DB_TYPE" in environ:
        return {}  # configured purely from the environment
    raise ConfigurationError(f"APP_ENV={env!r}: no config file {path}", key="APP_ENV")


def load_settings(
    env: str | None = None,
    *,
    config_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load ``configs/.env.{env}`` (default: ``APP_ENV`` or ``dev``), then the environment."""
    environ = os.environ if environ is None else environ
    env = env or environ.get("APP_ENV") or "dev"
    merged = _read_env_file(env, config_dir or CONFIG_DIR, environ)
    merged.update({k: v for k, v in environ.items() if k in _KEYS})
    merged["APP_ENV"] = env
    values: dict[str, Any] = {}
    for key, raw in merged.items():
        if key in _KEYS and (raw != "" or key == "DB_PASSWORD"):
            attr, parse = _KEYS[key]
            values[attr] = parse(key, raw)
    return Settings(**values)


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    global _cached
    if _cached is None:
        _cached = load_settings()
    return _cached


def reset_settings(settings: Settings | None = None) -> None:
    """Forget the cached settings (or replace them), e.g. between tests."""
    global _cached
    _cached = settings


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some attributes changed (validated again)."""
    return replace(settings, **changes)
