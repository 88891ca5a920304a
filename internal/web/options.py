"""Web-only switches, from :class:`Settings` (so `.env` files and the environment both set them).

``APP_MIGRATE_ON_START`` apply pending migrations at startup (default: on for ``APP_ENV=dev``);
                       off, a database behind the code fails the start ("run `make migrate`").
``APP_CREATE_TABLES``  ``create_all`` the models' tables at startup and stamp an unversioned
                       database as migrated (tests, throwaway databases; default: off).
``APP_DIAGNOSTICS``    enable ``/diagnostics/*`` routes, e.g. the slow request used by drain
                       drills (default: off; never enable it on a public deployment).

Example::

    options = WebOptions.load(settings)      # read in the lifespan, never at import
    if options.migrate_on_start: ...
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
    migrate_on_start: bool = False
    diagnostics: bool = False
    max_diagnostic_sleep: float = 30.0

    @classmethod
    def load(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> WebOptions:
        migrate = settings.app_migrate_on_start
        return cls(
            create_tables=settings.app_create_tables,
            migrate_on_start=settings.app_env == "dev" if migrate is None else migrate,
            diagnostics=settings.app_diagnostics,
        )
