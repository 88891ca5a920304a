"""The curated public API: every exported name resolves, and importing does no I/O."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pkg.database as api


def test_every_exported_name_is_documented_in_the_api_overview() -> None:
    """The package docstring groups every public name by job; a new export must join a group."""
    assert api.__doc__ is not None
    undocumented = [name for name in api.__all__ if f"``{name}``" not in api.__doc__]
    assert undocumented == []
    assert len(set(api.__all__)) == len(api.__all__)


def test_every_exported_callable_says_what_it_is_for() -> None:
    missing = [
        name
        for name in api.__all__
        if (inspect.isclass(obj := getattr(api, name)) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()
    ]
    assert missing == []


def test_import_opens_no_connection_and_starts_no_thread() -> None:
    code = (
        "import socket, threading\n"
        "opened = []\n"
        "orig = socket.socket.connect\n"
        "socket.socket.connect = lambda self, *a: opened.append(a) or orig(self, *a)\n"
        "import pkg.database, internal.infra.database, internal.app\n"
        "assert opened == [], opened\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"
