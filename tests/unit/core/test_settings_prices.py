"""The per-unit prices of `resources` (custom) sizes, from the environment."""

from __future__ import annotations

import pytest

from podium.core.errors import Invalid
from podium.core.settings import Settings, SizePrices
from podium.core.spec import EndpointSpec


def _custom() -> EndpointSpec:
    return EndpointSpec.model_validate(
        {
            "name": "big",
            "model": "iris",
            "framework": "sklearn",
            "resources": {"cpus": 2, "memory": "4Gi", "gpus": 1},
        }
    )


def test_custom_sizes_are_free_by_default() -> None:
    s = Settings.from_env({})
    assert s.prices == SizePrices()
    assert s.replica_size(_custom()).price_per_hour == 0


def test_custom_sizes_are_priced_per_unit() -> None:
    s = Settings.from_env(
        {
            "PODIUM_PRICE_PER_CPU_HOUR": "0.04",
            "PODIUM_PRICE_PER_GIB_HOUR": "0.005",
            "PODIUM_PRICE_PER_GPU_HOUR": "0",  # 0 is a price
        }
    )
    size = s.replica_size(_custom())
    assert (size.name, size.cpus, size.memory_mb, size.gpus) == ("custom", 2, 4096, 1)
    assert size.price_per_hour == pytest.approx(2 * 0.04 + 4 * 0.005)


@pytest.mark.parametrize("value", ["-0.01", "nan", "inf", "cheap"])
def test_a_bad_price_names_the_variable(value: str) -> None:
    with pytest.raises(Invalid) as e:
        Settings.from_env({"PODIUM_PRICE_PER_GIB_HOUR": value})
    assert e.value.field == "PODIUM_PRICE_PER_GIB_HOUR"
