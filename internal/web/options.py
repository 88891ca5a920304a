"""Web-only switches, from :class:`Settings` (so `.env` files and the environment both set them).

``APP_CREATE_TABLES``  create the models' tables at startup (default: on for ``APP_ENV=dev``).
``APP_DIAGNOSTICS``    enable ``/diagnostics/*`` routes, e.g. the slow request used by drain
                       drills (default: off; never enable it on a public deployment).

Example::

    options = WebOptions.load(settings)      # read in the lifespan, never at import
    if options.create_tables: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from internal.config.load_config import Settings

__all__ = ["WebOptions"]


@dataclass(frozen=True)
class WebOptions:
    """What the web app does at startup and which optional routes answer."""

    create_tables: bool = False
    diagnostics: bool = False
    max_diagnostic_sleep: float = 30.0

    @classmethod
    def load(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> WebOptions:
        create = settings.app_create_tables
        return cls(
            create_tables=settings.app_env == "dev" if create is None else create,
            diagnostics=settings.app_diagnostics,
        )
