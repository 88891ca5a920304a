"""Config loading: .env files, environment precedence, URL building, masking, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from internal.config.load_config import (
    Settings,
    get_settings,
    load_settings,
    reset_settings,
)
from pkg.database import new_async_engine
from pkg.database.errors import ConfigurationError

SECRET = "p@ss/w:rd#1"


def write_env(tmp_path: Path, env: str, body: str) -> Path:
    (tmp_path / f".env.{env}").write_text(body)
    return tmp_path


def test_dev_default_is_sqlite() -> None:
    settings = load_settings(environ={})
    assert settings.app_env == "dev"
    assert settings.database_url.drivername == "sqlite+aiosqlite"


def test_env_file_then_environment_wins(tmp_path: Path) -> None:
    cfg = write_env(tmp_path, "staging", "DB_TYPE=postgresql\nDB_DATABASE=app\nDB_POOL_SIZE=3\n")
    settings = load_settings("staging", config_dir=cfg, environ={"DB_POOL_SIZE": "9"})
    assert settings.db_pool_size == 9
    assert settings.database_url.database == "app"


def test_app_env_from_environment(tmp_path: Path) -> None:
    cfg = write_env(tmp_path, "qa", "DB_TYPE=mysql\nDB_DATABASE=qa\n")
    settings = load_settings(config_dir=cfg, environ={"APP_ENV": "qa"})
    assert settings.app_env == "qa"
    assert settings.database_url.drivername == "mysql+aiomysql"


@pytest.mark.parametrize(
    ("db_type", "driver", "port"),
    [
        ("postgresql", "postgresql+asyncpg", 5432),
        ("mysql", "mysql+aiomysql", 3306),
        ("oracle", "oracle+oracledb", 1521),
    ],
)
def test_default_port_per_type(db_type: str, driver: str, port: int) -> None:
    environ = {"DB_TYPE": db_type, "DB_DATABASE": "x", "DB_HOST": "db"}
    url = load_settings("none", config_dir=Path("/nonexistent"), environ=environ).database_url
    assert (url.drivername, url.port, url.host) == (driver, port, "db")


def test_oracle_service_name() -> None:
    environ = {"DB_TYPE": "oracle", "DB_SERVICE_NAME": "ORCLPDB1", "DB_USERNAME": "scott"}
    url = load_settings("none", config_dir=Path("/nonexistent"), environ=environ).database_url
    assert url.query["service_name"] == "ORCLPDB1"
    assert url.database is None


def test_db_url_wins_over_parts_and_gets_async_driver() -> None:
    environ = {"DB_URL": "postgresql://u@h/fromurl", "DB_TYPE": "mysql", "DB_DATABASE": "parts"}
    url = load_settings("none", config_dir=Path("/nonexistent"), environ=environ).database_url
    assert url.drivername == "postgresql+asyncpg"
    assert url.database == "fromurl"


def test_special_password_is_kept_exactly_and_masked_everywhere() -> None:
    environ = {"DB_TYPE": "postgresql", "DB_DATABASE": "d", "DB_USERNAME": "u", "DB_PASSWORD": SECRET}
    settings = load_settings("none", config_dir=Path("/nonexistent"), environ=environ)
    assert settings.database_url.password == SECRET
    for rendered in (repr(settings), str(settings), str(settings.masked())):
        assert SECRET not in rendered
        assert "***" in rendered


def test_password_inside_db_url_is_masked() -> None:
    environ = {"DB_URL": "postgresql+asyncpg://u:topsecret@h/d", "DB_READ_URL": "postgresql://u:rs@h/d"}
    settings = load_settings("none", config_dir=Path("/nonexistent"), environ=environ)
    assert "topsecret" not in repr(settings) and ":rs@" not in repr(settings)
    assert settings.read_database_url is not None
    assert settings.read_database_url.drivername == "postgresql+asyncpg"


@pytest.mark.parametrize(
    ("environ", "key", "shown"),
    [
        ({"DB_TYPE": "mongo"}, "DB_TYPE", "mongo"),
        ({"DB_TYPE": "sqlite", "DB_POOL_SIZE": "lots"}, "DB_POOL_SIZE", "lots"),
        ({"DB_TYPE": "sqlite", "DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT", "soon"),
        ({"DB_TYPE": "sqlite", "DB_ECHO": "maybe"}, "DB_ECHO", "maybe"),
        ({"DB_TYPE": "postgresql", "DB_PASSWORD": SECRET}, "DB_DATABASE", "postgresql"),
        ({"DB_TYPE": "sqlite", "DB_POOL_SIZE": "0"}, "DB_POOL_SIZE", "0"),
        ({"DB_URL": "not a url"}, "DB_URL", "DB_URL"),
        ({"DB_URL": "mongodb://x/y"}, "DB_URL", "mongodb"),
    ],
)
def test_bad_config_names_key_and_value_never_password(environ: dict[str, str], key: str, shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings("none", config_dir=Path("/nonexistent"), environ=environ)
    assert info.value.key == key
    assert key in str(info.value) and shown in str(info.value)
    assert SECRET not in str(info.value)


def test_missing_env_file_without_environment_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="APP_ENV"):
        load_settings("nope", config_dir=tmp_path, environ={})


def test_cached_settings_can_be_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "dev")
    reset_settings()
    try:
        first = get_settings()
        assert get_settings() is first
        reset_settings()
        assert get_settings() is not first
        replacement = Settings(db_pool_size=2)
        reset_settings(replacement)
        assert get_settings() is replacement
    finally:
        reset_settings()


async def test_special_password_connects_to_mysql(server_backends, tmp_path, caplog) -> None:
    from tests.conftest import resolve_backend

    backend = resolve_backend("mysql", server_backends, tmp_path)
    assert backend.admin_url is not None
    admin = new_async_engine(backend.admin_url, isolation_level="AUTOCOMMIT")
    user = "kit_special_user"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
            await conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"), {"pw": SECRET})
        environ = {
            "DB_TYPE": "mysql",
            "DB_HOST": backend.url.host or "127.0.0.1",
            "DB_USERNAME": user,
            "DB_PASSWORD": SECRET,
            "DB_DATABASE": "information_schema",
        }
        settings = load_settings("none", config_dir=Path("/nonexistent"), environ=environ)
        caplog.set_level(logging.DEBUG, logger="pkg.database")
        eng = new_async_engine(settings.database_url)
        try:
            async with eng.connect() as conn:
                assert (await conn.execute(text("SELECT CURRENT_USER()"))).scalar_one().startswith(user)
        finally:
            await eng.dispose()
        assert SECRET not in caplog.text
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
        await admin.dispose()
