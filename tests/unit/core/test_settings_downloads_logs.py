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
