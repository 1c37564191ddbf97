"""Settings of model downloads and log retention, from the environment."""

from __future__ import annotations

import pytest

from podium.core.errors import Invalid
from podium.core.settings import DownloadSettings, Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.download == DownloadSettings(stall_s=60.0, connect_timeout_s=10.0, read_timeout_s=30.0)
    assert s.log_retention == 20


def test_from_env() -> None:
    s = Settings.from_env(
        {
            "PODIUM_DOWNLOAD_STALL_S": "5",
            "PODIUM_HUB_CONNECT_TIMEOUT_S": "1.5",
            "PODIUM_HUB_READ_TIMEOUT_S": "7",
            "PODIUM_LOG_RETENTION": "3",
        }
    )
    assert s.download == DownloadSettings(stall_s=5.0, connect_timeout_s=1.5, read_timeout_s=7.0)
    assert s.log_retention == 3


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_bad_values_name_the_variable(value: str) -> None:
    with pytest.raises(Invalid) as e:
        Settings.from_env({"PODIUM_DOWNLOAD_STALL_S": value})
    assert e.value.field == "PODIUM_DOWNLOAD_STALL_S"


NEEDS_POSITIVE = [
    "PODIUM_LOG_RETENTION",
    "PODIUM_HUNG_GRACE_S",
    "PODIUM_TICK_S",
    "PODIUM_RESTART_BACKOFF_S",
    "PODIUM_CRASH_LOOP_THRESHOLD",
    "PODIUM_STOP_TIMEOUT_S",
    "PODIUM_MAX_BODY_BYTES",
    "PODIUM_API_MAX_JSON_BYTES",
    "PODIUM_MAX_UPLOAD_BYTES",
    "PODIUM_ARCHIVE_MAX_BYTES",
    "PODIUM_ARCHIVE_MAX_FILES",
    "PODIUM_ARCHIVE_MAX_RATIO",
    "PODIUM_DOWNLOAD_STALL_S",
    "PODIUM_HUB_CONNECT_TIMEOUT_S",
    "PODIUM_HUB_READ_TIMEOUT_S",
]


@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "nan", "x"])
@pytest.mark.parametrize("var", NEEDS_POSITIVE)
def test_a_non_positive_value_is_invalid_naming_the_variable(var: str, value: str) -> None:
    with pytest.raises(Invalid) as e:
        Settings.from_env({var: value})
    assert e.value.field == var and var in str(e.value)


@pytest.mark.parametrize("value", ["-1", "65536", "http"])
def test_a_bad_port_is_invalid(value: str) -> None:
    with pytest.raises(Invalid) as e:
        Settings.from_env({"PODIUM_PORT": value})
    assert e.value.field == "PODIUM_PORT"


def test_every_group_is_read_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "PODIUM_PORT": "0",
            "PODIUM_HUNG_GRACE_S": "2.5",
            "PODIUM_TICK_S": "0.1",
            "PODIUM_MAX_BODY_BYTES": "1000",
            "PODIUM_API_MAX_JSON_BYTES": "2000",
            "PODIUM_ARCHIVE_MAX_FILES": "7",
        }
    )
    assert s.port == 0 and s.control.hung_grace_s == 2.5 and s.control.tick_s == 0.1
    assert s.gateway.max_body_bytes == 1000 and s.limits.max_json_bytes == 2000
    assert s.limits.archive.max_entries == 7 and s.limits.max_upload_bytes == 20 * 2**30
