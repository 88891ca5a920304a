"""Fault 7: a script that never closes the database, or dies of an uncaught exception,
leaves no server connection, no disconnect error in the server log and no noise on stderr."""

from __future__ import annotations

import pytest

from tests.conftest import Backend
from tests.faults.helpers import ServerLog, noise_in, run_script, script_env, wait_no_connections

pytestmark = pytest.mark.slow

EXPECTED_STATUS = {"return": 0, "manual_loop": 0, "raise": 1, "raise_in_transaction": 1, "raise_after_run": 1}


@pytest.mark.parametrize("mode", list(EXPECTED_STATUS))
async def test_exit_without_close_is_clean(fault_backend: Backend, app_name: str, mode: str) -> None:
    log = await ServerLog.start(fault_backend)
    done = run_script("exit_paths.py", mode, env=script_env(fault_backend, app_name), timeout=60)
    assert done.returncode == EXPECTED_STATUS[mode], done.stderr
    assert noise_in(done.stderr) == [], done.stderr
    if mode.startswith("raise"):
        assert "RuntimeError: boom" in done.stderr  # the user's own error is still reported
    else:
        assert done.stderr.strip() == ""
    assert await wait_no_connections(fault_backend, app_name, within=2.0) == 0
    assert await log.disconnect_errors() == []
