"""Process lifecycle: the engine registry, automatic disposal, signals, bounded shutdown
and leak tracking. Most applications never touch it; these are its knobs.

Module map: ``registry`` (which engines, which loops), ``autodispose`` (loop end, exit,
fork), ``signals`` (SIGTERM/SIGINT), ``shutdown`` (close within a deadline), ``leaks``
(who holds each connection), ``register`` (wires a new engine into all of them).

Close verbs, one per job:

* ``await Database.close(timeout)`` / ``await close_engine(engine, timeout)``: from async
  code, e.g. app shutdown; bounded, returns a :class:`CloseReport`.
* ``Database.release()`` / ``release_engine(engine)``: from sync code, on the loop that
  owns the connections (a forked child, before a new event loop).
* ``release_all()``: every registered engine, from sync code (what the exit hook does).
* ``reset_auto_dispose()`` / ``reset_signal_handling()`` / ``reset_leak_tracking()``:
  forget global state, for tests.

Example::

    from pkg.database import lifecycle

    lifecycle.set_shutdown_timeout(5)
    lifecycle.configure_leak_tracking(enabled=True, threshold=30.0)
    lifecycle.install_signal_handlers()      # a plain script: drain DB calls on SIGTERM/SIGINT
"""

from pkg.database.lifecycle.autodispose import release_all, release_engine, reset_auto_dispose
from pkg.database.lifecycle.leaks import (
    Checkout,
    checked_out_connections,
    configure_leak_tracking,
    reset_leak_tracking,
)
from pkg.database.lifecycle.register import register_engine
from pkg.database.lifecycle.registry import (
    forget_engine,
    registered_engines,
    set_shutdown_timeout,
    shutdown_timeout,
)
from pkg.database.lifecycle.shutdown import CloseReport, close_engine
from pkg.database.lifecycle.signals import (
    install_signal_handlers,
    reset_signal_handling,
    set_signal_handling,
    signal_handling_enabled,
)

__all__ = [
    "Checkout",
    "CloseReport",
    "checked_out_connections",
    "close_engine",
    "configure_leak_tracking",
    "forget_engine",
    "install_signal_handlers",
    "register_engine",
    "registered_engines",
    "release_all",
    "release_engine",
    "reset_auto_dispose",
    "reset_leak_tracking",
    "reset_signal_handling",
    "set_shutdown_timeout",
    "set_signal_handling",
    "shutdown_timeout",
    "signal_handling_enabled",
]
