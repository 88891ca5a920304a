"""``DB_PGBOUNCER``: parsed, validated, and passed to the engine (a real PgBouncer query)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from internal.config.load_config import load_settings
from pkg.database import Database
from pkg.database.errors import ConfigurationError
from tests.conftest import PGBOUNCER, Backend, resolve_backend

PG = {"DB_URL": "postgresql://app@db/app"}


def test_db_pgbouncer_defaults_off_and_accepts_transaction() -> None:
    assert load_settings("x", environ=PG).engine_options()["pgbouncer"] is None
    settings = load_settings("x", environ={**PG, "DB_PGBOUNCER": "Transaction"})
    assert settings.db_pgbouncer == "transaction"
    assert settings.engine_options()["pgbouncer"] == "transaction"
    assert load_settings("x", environ={**PG, "DB_PGBOUNCER": "off"}).db_pgbouncer is None


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({**PG, "DB_PGBOUNCER": "session"}, "transaction or off"),
        ({"DB_URL": "mysql://root@db/app", "DB_PGBOUNCER": "transaction"}, "PostgreSQL only"),
    ],
)
def test_db_pgbouncer_bad_values_name_the_key(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle) as info:
        load_settings("x", environ=environ)
    assert info.value.key == "DB_PGBOUNCER"


async def test_settings_put_the_app_database_behind_pgbouncer(
    server_backends: dict[str, Backend | str], tmp_path: Path
) -> None:
    pooled = resolve_backend(PGBOUNCER, server_backends, tmp_path)
    url = pooled.url.render_as_string(hide_password=False)
    settings = load_settings("x", environ={"DB_URL": url, "DB_PGBOUNCER": "transaction"})
    db = Database(settings.database_url, **{**settings.engine_options(), "slow_query_threshold": None})
    try:
        async with db.session() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        options = db.engine.sync_engine.get_execution_options()
        assert options.get("kit_pgbouncer") == "transaction"
    finally:
        await db.close(5)
