"""PODIUM_METRICS_INTERVAL_S: the metrics history's sampling interval must divide a minute
in whole seconds (its points roll up into whole minutes); anything else is `Invalid`
naming the variable."""

from __future__ import annotations

import pytest

from podium.core.errors import Invalid
from podium.core.metric_schemas import finest_resolution
from podium.core.settings import METRICS_INTERVALS_S, ObservabilitySettings, Settings


@pytest.mark.parametrize("value", ["1", "5", "10", "10.0", "12", "15", "30", "60"])
def test_an_interval_dividing_a_minute_is_the_sampled_resolution(value: str) -> None:
    s = Settings.from_env({"PODIUM_METRICS_INTERVAL_S": value})
    assert 60 % finest_resolution(s.observability) == 0
    assert finest_resolution(s.observability) == float(value)


@pytest.mark.parametrize("value", ["7", "0.5", "2.5", "45", "120", "inf", "0", "-10", "x"])
def test_any_other_interval_is_invalid_naming_the_variable(value: str) -> None:
    with pytest.raises(Invalid) as e:
        Settings.from_env({"PODIUM_METRICS_INTERVAL_S": value})
    assert e.value.field == "PODIUM_METRICS_INTERVAL_S"


def test_the_rule_holds_for_settings_built_in_code_too() -> None:
    assert all(60 % v == 0 for v in METRICS_INTERVALS_S)
    with pytest.raises(Invalid) as e:
        ObservabilitySettings(metrics_interval_s=7)
    assert e.value.field == "PODIUM_METRICS_INTERVAL_S"
    assert "7" in str(e.value) and "divide a minute" in str(e.value)
