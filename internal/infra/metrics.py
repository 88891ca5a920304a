"""The app's metrics switch: ``APP_METRICS=true`` exports every engine's pool and query
metrics in Prometheus format (the ``prometheus`` extra), served at ``/metrics``.

Called by the web app's lifespan and by each Celery pool process, before the engine is
built. With several processes (uvicorn ``--workers``, Celery prefork children) set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory for all of them before they start:
one scrape of ``/metrics`` then sums every process. Example::

    if setup_metrics(settings):      # at start, before init_async_db()
        ...
    teardown_metrics()               # at exit: drop this process's live gauges
"""

from __future__ import annotations

import logging

from internal.config.load_config import Settings
from pkg.database.metrics import install_prometheus, prometheus_process_exited

__all__ = ["setup_metrics", "teardown_metrics"]

logger = logging.getLogger(__name__)


def setup_metrics(settings: Settings) -> bool:
    """Install the Prometheus exporter when ``APP_METRICS`` is on; whether it is on.

    ConfigurationError when it is on and ``prometheus_client`` is not installed.
    """
    if not settings.app_metrics:
        return False
    install_prometheus()
    logger.info("metrics on: Prometheus exporter installed")
    return True


def teardown_metrics() -> None:
    """This process is ending: its live gauges leave the multiprocess sum (no-op otherwise)."""
    prometheus_process_exited()
