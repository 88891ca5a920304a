"""Web-only switches that are not (yet) part of :class:`Settings`, read from the environment.

``APP_CREATE_TABLES``  create the models' tables at startup (default: on for ``APP_ENV=dev``).
``APP_DIAGNOSTICS``    enable ``/diagnostics/*`` routes, e.g. the slow request used by drain
                       drills (default: off; never enable it on a public deployment).

Example::

    options = WebOptions.load(settings)      # read in the lifespan, never at import
    if options.create_tables: ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from internal.config.load_config import Settings
from pkg.database.exceptions import ConfigurationError

__all__ = ["WebOptions"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(environ: Mapping[str, str], key: str, default: bool) -> bool:
    raw = environ.get(key, "").strip().lower()
    if not raw:
        return default
    if raw not in _TRUE | _FALSE:
        raise ConfigurationError(f"{key} must be true or false, got {raw!r}", key=key)
    return raw in _TRUE


@dataclass(frozen=True)
class WebOptions:
    """What the web app does at startup and which optional routes answer."""

    create_tables: bool = False
    diagnostics: bool = False
    max_diagnostic_sleep: float = 30.0

    @classmethod
    def load(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> WebOptions:
        env = os.environ if environ is None else environ
        return cls(
            create_tables=_flag(env, "APP_CREATE_TABLES", settings.app_env == "dev"),
            diagnostics=_flag(env, "APP_DIAGNOSTICS", False),
        )
