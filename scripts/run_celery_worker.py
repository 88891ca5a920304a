"""Start the reference Celery worker (``make worker``): prefork pool on the settings' Redis.

Defaults come from the settings (``configs/.env.$APP_ENV`` then the environment);
flags override them. Anything not listed below is passed to ``celery worker``::

    $ make worker
    $ .venv/bin/python scripts/run_celery_worker.py --queues kit --concurrency 2 --loglevel INFO

Each pool process opens its own event loop and engine at start and disposes it at
exit; SIGTERM is a warm shutdown (running tasks finish, then the pools close).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from internal.config.load_config import get_settings
from internal.infra.celery.app import DEFAULT_QUEUE, celery_app

SUPPORTED_POOLS = ("prefork", "solo")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--queues", "-Q", default=DEFAULT_QUEUE, help="comma-separated queue names")
    parser.add_argument("--concurrency", "-c", type=int, default=settings.celery_concurrency)
    parser.add_argument("--loglevel", "-l", default=settings.log_level)
    parser.add_argument("--pool", "-P", default="prefork", help="prefork (default) or solo")
    parser.add_argument("--hostname", "-n", default=f"kit-{os.getpid()}@%h")
    parser.add_argument("--max-tasks-per-child", type=int, default=None)
    args, extra = parser.parse_known_args(argv)
    if args.pool not in SUPPORTED_POOLS:
        parser.error(
            f"--pool {args.pool} is not supported: the kit runs one event loop and one engine per "
            "process, so tasks of several threads would share them; use prefork (default) or solo"
        )
    return args, extra


def worker_argv(args: argparse.Namespace, extra: list[str]) -> list[str]:
    argv = [
        "worker",
        f"--queues={args.queues}",
        f"--concurrency={args.concurrency}",
        f"--loglevel={args.loglevel.upper()}",
        f"--pool={args.pool}",
        f"--hostname={args.hostname}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if args.max_tasks_per_child:
        argv.append(f"--max-tasks-per-child={args.max_tasks_per_child}")
    return argv + extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    celery_app.worker_main(worker_argv(args, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
