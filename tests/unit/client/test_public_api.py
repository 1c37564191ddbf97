from __future__ import annotations

import types

import podium.client as sdk


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(sdk).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(sdk.__all__)


def test_all_names_exist_and_are_unique() -> None:
    assert len(sdk.__all__) == len(set(sdk.__all__))
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None


def test_errors_are_the_core_tree() -> None:
    from podium.core import errors

    assert sdk.NotFound is errors.NotFound
    assert issubclass(sdk.Retryable, sdk.Unavailable)
