"""The `resources:` block of an endpoint spec: a replica's size without a named instance type
(Scale Launch's `cpus`, `memory`, `gpus`, `gpu_type`).

`memory` is a size with a unit (`"4Gi"`, `"512Mi"`, `"2G"`, `"1500M"`) or a number of MiB.
When `resources` is given it is the replica's size; naming an instance type other than the
default as well is a 422. The API checks it against the node (CPUs, memory, GPUs this
machine has) and the project's quotas; the backend enforces memory as for instance types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from podium.core.bounds import AtMost
from podium.core.errors import Invalid

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?B?\s*$")
_MIB = {
    None: 1.0,
    "Ki": 1 / 1024,
    "Mi": 1.0,
    "Gi": 1024.0,
    "Ti": 1024.0 * 1024,
    "K": 1000 / 1024**2,
    "M": 1000**2 / 1024**2,
    "G": 1000**3 / 1024**2,
    "T": 1000**4 / 1024**2,
}
MAX_MEMORY_MB = 16 * 1024 * 1024  # 16 TiB: a typo, not a machine


def _mebibytes(value: object) -> object:
    """`"4Gi"` → 4096; a bare number is MiB already."""
    if isinstance(value, str):
        m = _SIZE.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a memory size: use e.g. '512Mi', '4Gi' or MiB")
        return max(1, round(float(m.group(1)) * _MIB[m.group(2)]))
    return value


MemoryMb = Annotated[int, BeforeValidator(_mebibytes), Field(gt=0, le=MAX_MEMORY_MB)]


class ResourcesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(1.0, gt=0, le=1024, allow_inf_nan=False, description="CPU cores")
    memory: MemoryMb = Field(2048, description="MiB, or a size such as '4Gi'")
    gpus: int = Field(0, ge=0, le=64)
    gpu_type: Annotated[str, AtMost(64)] | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="e.g. nvidia-a10g (gpus > 0)"
    )

    @model_validator(mode="after")
    def _gpu_type(self) -> Self:
        if self.gpu_type is not None and self.gpus == 0:
            raise ValueError("`gpu_type` needs `gpus` of at least 1")
        return self


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """What the node replicas run on has: measured by the backend
    (`backends.resources.node_capacity`), checked here."""

    cpus: int
    memory_mb: int
    gpus: int = 0


def check_fits(resources: ResourcesSpec, node: NodeCapacity) -> None:
    """`Invalid` naming `resources.cpus|memory|gpus` when one replica could not fit on the
    node at all (the quota is checked elsewhere)."""
    if resources.cpus > node.cpus:
        raise Invalid(
            f"{resources.cpus:g} CPUs asked; this node has {node.cpus} CPUs",
            field="resources.cpus",
        )
    if resources.memory > node.memory_mb:
        raise Invalid(
            f"{resources.memory} MiB of memory asked; this node has {node.memory_mb} MiB",
            field="resources.memory",
        )
    if resources.gpus > node.gpus:
        raise Invalid(
            f"{resources.gpus} GPUs asked; this node has {node_gpus_text(node.gpus)}",
            field="resources.gpus",
        )


def gpu_count(n: int) -> str:
    """ "1 GPU", "2 GPUs"."""
    return f"{n} GPU{'s' if n != 1 else ''}"


def node_gpus_text(n: int) -> str:
    """What the node has, as the messages say it: "2 GPUs", or "no GPU (…)" for none."""
    return gpu_count(n) if n else "no GPU (none NVML could find)"


def too_few_gpus(instance_type: str, wanted: int, node_gpus: int) -> str:
    """Why a replica of this instance type can never run on this node: the one message
    the API's check (a 422) and the local backend's start (a load error) both give."""
    return (
        f"instance type {instance_type!r} asks for {gpu_count(wanted)} per replica; "
        f"this node has {node_gpus_text(node_gpus)}"
    )
