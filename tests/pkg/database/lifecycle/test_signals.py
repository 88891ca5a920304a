"""The signal rule, in real processes: building an engine touches no signal; the kit's
handlers are installed only by an explicit call, only over Python's defaults, never over
an application's handler, never over an inherited SIG_IGN, and never wrap a handler that
was chained in front of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]

PRELUDE = """
import asyncio, os, signal, sys
from sqlalchemy import text
from pkg.database import new_async_engine
from pkg.database.lifecycle import install_signal_handlers, set_signal_handling

async def use(engine):
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT 1"))).scalar_one()

def name(handler):
    return getattr(handler, "name", None) or getattr(handler, "__qualname__", repr(handler))
"""


def _start(body: str, **popen: object) -> subprocess.Popen[str]:
    code = PRELUDE + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _run(body: str) -> tuple[int, str, str]:
    proc = _start(body)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_building_and_using_an_engine_installs_no_signal_handler() -> None:
    status, out, err = _run(
        """
        engine = new_async_engine("sqlite+aiosqlite:///:memory:", slow_query_threshold=None)
        assert asyncio.run(use(engine)) == 1
        print(name(signal.getsignal(signal.SIGTERM)), name(signal.getsignal(signal.SIGINT)))
        """
    )
    assert status == 0, err
    assert out.split() == ["SIG_DFL", "default_int_handler"]


def test_explicit_install_handles_sigterm_in_a_plain_script() -> None:
    status, out, err = _run(
        """
        install_signal_handlers()
        print(name(signal.getsignal(signal.SIGTERM)), flush=True)
        engine = new_async_engine("sqlite+aiosqlite:///:memory:", slow_query_threshold=None)

        async def main():
            await use(engine)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(30)  # the kit stops the loop here

        asyncio.run(main())
        """
    )
    assert out.split() == ["_handle"]
    assert status == 143, err


def test_an_application_handler_is_left_alone() -> None:
    status, out, err = _run(
        """
        def app_handler(signum, frame):
            print("app", flush=True)
        signal.signal(signal.SIGTERM, app_handler)
        install_signal_handlers()
        assert signal.getsignal(signal.SIGTERM) is app_handler, "the kit added a handler"
        os.kill(os.getpid(), signal.SIGTERM)
        print("alive")
        """
    )
    assert status == 0, err
    assert out.split() == ["app", "alive"]


def test_a_signal_inherited_as_ignored_stays_ignored() -> None:
    def ignore_sigterm() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    proc = _start(
        """
        install_signal_handlers()
        set_signal_handling(True)
        engine = new_async_engine("sqlite+aiosqlite:///:memory:", slow_query_threshold=None)
        asyncio.run(use(engine))
        print(name(signal.getsignal(signal.SIGTERM)), flush=True)
        sys.stdin.readline()
        print("alive", flush=True)
        """,
        preexec_fn=ignore_sigterm,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["SIG_IGN"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate("go\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.split() == ["alive"]


def test_a_handler_chained_in_front_is_never_wrapped_and_passes_on_when_disabled() -> None:
    status, out, err = _run(
        """
        install_signal_handlers()
        kit = signal.getsignal(signal.SIGTERM)

        def front(signum, frame):  # e.g. a drain handler installed later, calling ours
            print("front", flush=True)
            kit(signum, frame)

        signal.signal(signal.SIGTERM, front)
        install_signal_handlers()
        assert signal.getsignal(signal.SIGTERM) is front, "the kit wrapped a handler in front of it"
        set_signal_handling(False)  # ours now only passes the signal on: SIG_DFL kills us
        os.kill(os.getpid(), signal.SIGTERM)
        print("not reached")
        """
    )
    assert out.split() == ["front"], err
    assert status == -signal.SIGTERM
