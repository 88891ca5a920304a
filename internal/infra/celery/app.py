"""The Celery app: Redis broker and result backend from settings, loaded lazily.

Example::

    from internal.infra.celery.app import celery_app
    celery_app.send_task("kit.import_users", args=[[{"username": "ada", "email": "a@x.io"}]])

Importing this module reads no file and opens no connection: the settings are
loaded the first time Celery needs its configuration.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from internal.config.load_config import Settings, get_settings
from internal.infra.celery import signals as _signals  # connects the worker hooks

__all__ = ["DEFAULT_QUEUE", "celery_app", "celery_config", "create_celery_app"]

assert _signals  # imported for its side effect

DEFAULT_QUEUE = "kit"
TASK_MODULES = ["internal.infra.celery.tasks"]


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery configuration for ``settings`` (broker, backend, serialisation, worker defaults)."""
    return {
        "broker_url": settings.celery_broker_url,
        "result_backend": settings.celery_result_backend,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": DEFAULT_QUEUE,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 3600,
        "result_extended": True,
        "task_track_started": True,
        "worker_concurrency": settings.celery_concurrency,
        "worker_prefetch_multiplier": 1,  # a long task does not hold back queued ones
        "worker_redirect_stdouts_level": "INFO",
        "enable_utc": True,
        "timezone": "UTC",
    }


def create_celery_app(settings: Settings | None = None, *, name: str = "kit") -> Celery:
    """A Celery app; with no ``settings`` they are read from ``get_settings()`` on first use."""
    app = Celery(name, include=TASK_MODULES)
    if settings is not None:
        app.conf.update(celery_config(settings))
    else:
        app.add_defaults(lambda: celery_config(get_settings()))
    return app


celery_app = create_celery_app()
