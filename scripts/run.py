"""Serve the reference web app with uvicorn (``make run``).

Host, port, log level and the drain deadline come from the settings
(``configs/.env.$APP_ENV`` then the environment; ``APP_ENV`` defaults to ``dev``:
SQLite ``dev.db`` with tables created)::

    $ make run                                   # http://127.0.0.1:8000/docs
    $ APP_ENV=prod APP_PORT=9000 .venv/bin/python scripts/run.py

On SIGTERM uvicorn stops accepting connections and waits up to
``APP_DRAIN_TIMEOUT`` seconds for in-flight requests; the app then disposes its pool
within ``DB_SHUTDOWN_TIMEOUT`` seconds.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from internal.app import configure_logging
from internal.config.load_config import get_settings


def main() -> int:
    settings = get_settings()
    configure_logging(settings)
    logging.getLogger(__name__).info(
        "serving on http://%s:%d (env=%s, drain=%.1fs)",
        settings.app_host,
        settings.app_port,
        settings.app_env,
        settings.app_drain_timeout,
    )
    uvicorn.run(
        "internal.app:app",
        host=settings.app_host,
        port=settings.app_port,
        log_config=None,  # configure_logging above: one format for uvicorn and the app
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=math.ceil(settings.app_drain_timeout),
        access_log=settings.log_level.upper() == "DEBUG",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
