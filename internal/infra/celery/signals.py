"""Worker hooks: each prefork child gets its own loop and engine, closed on exit.

Connected when :mod:`internal.infra.celery.app` is imported. ``worker_process_init``
runs in the child right after fork; ``worker_process_shutdown`` runs in the child
as it exits; ``worker_shutdown`` covers the solo/threads pools (one process).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown

from internal.config.load_config import get_settings
from internal.infra.celery.loop import start_worker_loop, stop_worker_loop
from internal.infra.metrics import setup_metrics, teardown_metrics

__all__: list[str] = []

logger = logging.getLogger(__name__)


@worker_process_init.connect(weak=False)
def _on_process_init(**_: Any) -> None:
    setup_metrics(get_settings())  # APP_METRICS: this child's engine reports too
    start_worker_loop()


@worker_process_shutdown.connect(weak=False)
def _on_process_shutdown(**_: Any) -> None:
    stop_worker_loop()
    teardown_metrics()


@worker_shutdown.connect(weak=False)
def _on_worker_shutdown(**_: Any) -> None:
    stop_worker_loop()  # no-op in the prefork parent, which never opens the database
