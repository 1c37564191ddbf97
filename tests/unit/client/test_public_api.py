from __future__ import annotations

import subprocess
import sys
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


def test_import_podium_stays_cheap_and_loads_the_sdk_names_on_use() -> None:
    """`import podium` imports nothing else; `podium.Client` and the module functions load
    the SDK when first asked for (PEP 562 `__getattr__`)."""
    code = (
        "import sys, podium\n"
        "print(sorted(m for m in sys.modules if m.startswith(('podium', 'httpx', 'pydantic'))))\n"
        "assert podium.Client is podium.client.PodiumClient\n"
        "for name in podium.__all__:\n"
        "    assert getattr(podium, name) is not None, name\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['podium']"
