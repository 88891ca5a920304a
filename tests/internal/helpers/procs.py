"""Real subprocesses for tests: started in their own session, output to a file, always reaped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """A child process whose combined output goes to ``log``; ``stop()`` never leaves it behind."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if not self.alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not seen in output:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        """Kill the process group if anything is still running; close the log."""
        try:
            if self.alive():
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
            else:  # the main process is gone; its children (e.g. pool workers) may not be
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
        finally:
            self._out.close()


def wait_http_ready(proc: Proc, url: str, timeout: float = 20.0) -> None:
    """Poll ``url`` until it answers 200 (fails early if the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"server exited ({proc.popen.returncode}):\n{proc.output()[-4000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout}s:\n{proc.output()[-4000:]}")


def _socket_inodes(port: int) -> set[str]:
    """Inodes of the local TCP sockets bound to ``port`` (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def pid_owning_port(port: int, candidates: list[int]) -> int | None:
    """Which of ``candidates`` holds the local TCP socket on ``port`` (read from /proc)."""
    wanted = {f"socket:[{inode}]" for inode in _socket_inodes(port)}
    for pid in candidates:
        fd_dir = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            if any(os.readlink(fd_dir / fd) in wanted for fd in os.listdir(fd_dir)):
                return pid
    return None


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []
