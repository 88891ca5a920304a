"""The worker's loop helper and task decorator in-process (eager tasks, real SQLite file)."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from pathlib import Path

import pytest

from internal.app import create_tables
from internal.config.load_config import Settings
from internal.infra.celery import loop
from internal.infra.celery.tasks import import_users, recompute_profiles
from internal.infra.database import get_engine
from pkg.database.errors import DuplicateKeyError
from scripts.run_celery_worker import parse_args, worker_argv


@pytest.fixture
def worker_loop(tmp_path: Path):
    settings = Settings(db_type="sqlite", db_database=str(tmp_path / "worker.db"), db_slow_query_threshold=5)
    started = loop.start_worker_loop(settings)
    try:
        started.run_until_complete(create_tables(get_engine()))
        yield started
    finally:
        loop.stop_worker_loop()


def test_tasks_share_the_process_loop_and_commit(worker_loop: asyncio.AbstractEventLoop) -> None:
    rows = [{"username": f"h{i}", "email": f"h{i}@helpers.io"} for i in range(3)]
    assert import_users.apply(args=[rows]).get() == {"imported": 3, "retries": 0}
    assert loop.current_loop() is worker_loop  # no new loop per task
    assert recompute_profiles.apply(kwargs={"batch_size": 2}).get() == {"updated": 3, "retries": 0}
    assert recompute_profiles.apply().get()["updated"] == 0  # committed: nothing left to do


def test_integrity_error_rolls_back_and_is_not_retried(worker_loop: asyncio.AbstractEventLoop) -> None:
    rows = [{"username": "a", "email": "same@helpers.io"}, {"username": "b", "email": "same@helpers.io"}]
    result = import_users.apply(args=[rows])
    assert isinstance(result.result, DuplicateKeyError) and result.state == "FAILURE"
    assert import_users.apply(args=[rows[:1]]).get()["imported"] == 1  # nothing of the batch stayed


def test_run_refuses_to_nest_inside_the_loop(worker_loop: asyncio.AbstractEventLoop) -> None:
    async def nested() -> None:
        loop.run(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="await the coroutine"):
        worker_loop.run_until_complete(nested())


def test_stop_closes_the_loop_and_a_fork_gets_its_own(tmp_path: Path) -> None:
    settings = Settings(db_type="sqlite", db_database=str(tmp_path / "fork.db"))
    parent = loop.start_worker_loop(settings)
    try:
        pid = os.fork()
        if pid == 0:  # child: the inherited loop must not be reused
            child_ok = loop.current_loop() is not parent and loop.run(asyncio.sleep(0, "ok")) == "ok"
            loop.stop_worker_loop()
            os._exit(0 if child_ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert loop.current_loop() is parent
    finally:
        loop.stop_worker_loop()
    assert parent.is_closed()


def test_worker_cli_flags_override_settings() -> None:
    args, extra = parse_args(
        ["-Q", "a,b", "-c", "3", "--loglevel", "debug", "--max-tasks-per-child", "50", "-E"]
    )
    argv = worker_argv(args, extra)
    assert argv[0] == "worker"
    for flag in ("--queues=a,b", "--concurrency=3", "--loglevel=DEBUG", "--pool=prefork", "-E"):
        assert flag in argv
    assert "--max-tasks-per-child=50" in argv


def test_task_arguments_are_checked_against_the_coroutines_signature() -> None:
    """``db_task`` keeps the signature (minus ``session``): a wrong call fails before sending."""
    with pytest.raises(TypeError):
        import_users.apply_async(args=[], kwargs={"bogus": 1})
    with pytest.raises(TypeError):
        recompute_profiles.apply_async(args=[1, 2, 3, 4])
    assert [p for p in inspect.signature(import_users.run).parameters] == ["rows"]


@pytest.mark.parametrize("pool", ["threads", "eventlet", "gevent"])
def test_thread_pools_are_refused_with_a_reason(pool: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--pool", pool])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"--pool {pool} is not supported" in err and "prefork" in err


def test_run_from_another_thread_is_refused(worker_loop: asyncio.AbstractEventLoop) -> None:
    errors: list[BaseException] = []

    async def nothing() -> int:
        return 1

    def in_thread() -> None:
        try:
            loop.run(nothing())
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    assert len(errors) == 1 and "thread pools" in str(errors[0])
    assert loop.run(nothing()) == 1  # the owning thread still runs tasks
