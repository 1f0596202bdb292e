"""Configuration is read once from a mapping, with local defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.platform.config import ConfigError, load_settings


def test_defaults_give_each_service_its_own_sqlite_file_and_ports() -> None:
    settings = load_settings("catalog", {"DATA_DIR": "/tmp/emporium-x"})
    assert settings.database_url == "sqlite+aiosqlite:////tmp/emporium-x/catalog.db"
    assert (settings.grpc_port, settings.metrics_port) == (50052, 9102)
    assert settings.target("identity") == "127.0.0.1:50051"
    assert settings.redis_url is None


def test_environment_overrides_urls_targets_and_credentials() -> None:
    settings = load_settings(
        "order",
        {
            "DATABASE_URL": "postgresql+asyncpg://db/order",
            "GRPC_PORT": "6000",
            "CATALOG_TARGET": "catalog:50051",
            "SERVICE_CREDENTIALS": "order:s3cret",
            "REDIS_URL": "redis://r:6379/0",
        },
    )
    assert settings.database_url == "postgresql+asyncpg://db/order"
    assert settings.grpc_port == 6000
    assert settings.target("catalog") == "catalog:50051"
    assert settings.service_credentials == {"order": "s3cret"}
    assert settings.redis_url == "redis://r:6379/0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GRPC_PORT": "abc"}, "GRPC_PORT"),
        ({"SERVICE_CREDENTIALS": "no-secret"}, "SERVICE_CREDENTIALS"),
        ({"BOOTSTRAP_ADMIN": ":x"}, "BOOTSTRAP_ADMIN"),
        ({"EVENT_LOOP": "trio"}, "EVENT_LOOP"),
    ],
)
def test_malformed_variables_are_rejected_with_their_name(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings("identity", env)


def test_unknown_service_is_rejected() -> None:
    with pytest.raises(ConfigError):
        load_settings("warehouse", {})


def test_data_dir_is_resolved_to_an_absolute_path() -> None:
    assert load_settings("identity", {"DATA_DIR": "rel"}).data_dir == Path("rel").resolve()


def test_durations_are_bounded_by_an_hour_unless_the_caller_allows_more() -> None:
    settings = load_settings("payment", {"EMPORIUM_HOLD_SECONDS": "86400"})
    with pytest.raises(ConfigError, match=r"EMPORIUM_HOLD_SECONDS must be in \(0, 3600\]"):
        settings.seconds("EMPORIUM_HOLD_SECONDS", 60.0)
    assert settings.seconds("EMPORIUM_HOLD_SECONDS", 60.0, maximum=7 * 86400) == 86400
    assert settings.seconds("EMPORIUM_OTHER_SECONDS", 60.0) == 60.0


def test_services_run_on_uvloop_unless_told_to_use_the_standard_loop() -> None:
    assert load_settings("catalog", {}).event_loop == "uvloop"
    assert load_settings("catalog", {"EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
