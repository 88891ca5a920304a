"""The server-log check reads the log the server itself names, and fails when it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Backend
from tests.faults.helpers import ServerLog


@pytest.mark.parametrize("fault_backend", ["postgresql", "mysql"], indirect=True)
async def test_the_probe_is_found_in_the_servers_own_log(fault_backend: Backend) -> None:
    log = await ServerLog.start(fault_backend)
    assert log.path is not None and log.path.is_file()
    assert await log.disconnect_errors() == []  # read, probe found, nothing about this run's db


@pytest.mark.parametrize("fault_backend", ["postgresql", "mysql"], indirect=True)
async def test_a_log_that_is_not_the_servers_fails_the_check(fault_backend: Backend, tmp_path: Path) -> None:
    real = await ServerLog.start(fault_backend)
    elsewhere = tmp_path / "not-the-server.log"
    elsewhere.write_text("nothing here\n")
    wrong = ServerLog(fault_backend, elsewhere, 0, real.probe)
    with pytest.raises(AssertionError, match="probe not found"):
        await wrong.disconnect_errors()
