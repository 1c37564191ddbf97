"""Where a transformers model runs (device) and in which precision (dtype).

Given in the endpoint's `engine_args` (the spec's one block of runtime options, which the
presets read as flags): `device` is auto | cpu | cuda | cuda:N, `dtype` is auto | float32 |
float16 | bfloat16; both default to auto. Checked twice: by the API at deploy (422 naming
`engine_args.device`, `engine_args.dtype` or the unknown key), and by the replica when it
loads (a load error: the framework may come from the model version, which the API does not
read).

auto picks the GPU when the replica has one (the backend gives it its own devices through
`CUDA_VISIBLE_DEVICES`; a replica that asked for none sees none), else the CPU; and, on a
GPU, bfloat16 where the device does it in hardware (compute capability 8.0, Ampere, and
later: float32's range, half its memory), float16 elsewhere (a T4 or V100 only emulates
bfloat16, several times slower than float16, and `torch.cuda.is_bf16_supported()` counts
the emulation as support, so `native_bf16` reads the capability instead); on the CPU
float32 (half precision is slow or unsupported there). Asking for `cuda` on a replica
without a GPU is a load error, not a silent CPU run.

`parse` and `choose` are pure (no torch), so the API and the tests use them without it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podium.core.errors import Invalid, LoadError

AUTO = "auto"
DTYPES = ("auto", "float32", "float16", "bfloat16")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d{1,2})$")
KEYS = ("device", "dtype")


@dataclass(frozen=True, slots=True)
class Placement:
    """What the spec asks for (`auto` where it says nothing)."""

    device: str = AUTO
    dtype: str = AUTO


@dataclass(frozen=True, slots=True)
class Chosen:
    """Where the model is loaded: a torch device string and a dtype name."""

    device: str  # "cpu", "cuda", "cuda:1"
    dtype: str  # "float32", "float16", "bfloat16"


def parse(engine_args: Mapping[str, object]) -> Placement:
    """The placement `engine_args` ask for; `Invalid` naming `engine_args.<key>` for an
    unknown key or value."""
    for key in engine_args:
        if key not in KEYS:
            raise Invalid(
                f"the transformers runtime takes engine_args {' and '.join(KEYS)}, not {key!r}",
                field=f"engine_args.{key}",
            )
    device = str(engine_args.get("device", AUTO)).strip().lower()
    if not _DEVICE.match(device):
        raise Invalid(
            f"device {engine_args.get('device')!r}: use auto, cpu, cuda or cuda:N",
            field="engine_args.device",
        )
    dtype = str(engine_args.get("dtype", AUTO)).strip().lower()
    if dtype not in DTYPES:
        raise Invalid(
            f"dtype {engine_args.get('dtype')!r}: use {', '.join(DTYPES)}",
            field="engine_args.dtype",
        )
    return Placement(device=device, dtype=dtype)


def choose(asked: Placement, *, cuda_devices: int, bf16: bool) -> Chosen:
    """Resolve auto (see the module docstring). `cuda_devices`: how many GPUs the replica
    sees; `bf16`: whether the GPU it would run on does bfloat16 in hardware
    (`native_bf16`). `LoadError` for a GPU asked for that the replica does not have."""
    device = asked.device
    if device == AUTO:
        device = "cuda" if cuda_devices > 0 else "cpu"
    elif device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if index >= cuda_devices:
            seen = f"it sees {cuda_devices}" if cuda_devices else "it sees none"
            raise LoadError(
                f"engine_args.device is {device} but this replica has no such GPU ({seen}): "
                "give the endpoint an instance type with GPUs, or use device auto or cpu"
            )
    dtype = asked.dtype
    if dtype == AUTO:
        half = "bfloat16" if bf16 else "float16"
        dtype = "float32" if device == "cpu" else half
    return Chosen(device=device, dtype=dtype)


def native_bf16(capability: tuple[int, int]) -> bool:
    """Whether a GPU of this CUDA compute capability computes in bfloat16 in hardware
    (8.0, Ampere, and later), not emulated (see the module docstring)."""
    return capability >= (8, 0)


def resolve(engine_args: Mapping[str, object]) -> Chosen:
    """In the replica: parse, then choose with what torch sees (imports torch). A bad
    option is a load error here (the replica has no 422 to answer)."""
    import torch

    try:
        asked = parse(engine_args)
    except Invalid as e:
        raise LoadError(f"{e.field}: {e}") from e
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(asked.device.partition(":")[2] or 0)  # the GPU it will run on
    bf16 = index < count and native_bf16(_capability(torch.cuda.get_device_capability(index)))
    return choose(asked, cuda_devices=count, bf16=bf16)


def _capability(raw: tuple[int, ...]) -> tuple[int, int]:
    """(major, minor) of what torch reports."""
    return (int(raw[0]), int(raw[1]))


def torch_dtype(chosen: Chosen) -> Any:
    """The torch dtype object of `chosen.dtype`."""
    import torch

    return getattr(torch, chosen.dtype)
