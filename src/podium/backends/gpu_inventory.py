"""The GPUs of this node and which replica holds each one (the local backend's placement).

Built once when the backend starts from `resources.node_devices`: NVML's devices
(`nvidia-ml-py`), or, without NVML, the device files `/dev/nvidia0`, `/dev/nvidia1`, …,
only those the server's own `CUDA_VISIBLE_DEVICES` names, none in MIG mode (the count
`node_gpus` gives too, so the API's check and the inventory agree). A replica that asks
for `n` GPUs gets `n` devices no other replica holds (`assign`), or None when fewer are
free: the backend then refuses the start (`core.errors.NoRoom`) and the controller holds
the replica pending. Devices come back when the replica's process has ended (`release`,
from the backend's poll), never when it is merely asked to stop: a stopping replica still
holds its memory on the device.

A replica sees only its own devices through `CUDA_VISIBLE_DEVICES` (`visible`), by UUID
when NVML gives one: CUDA numbers devices fastest-first unless told otherwise, NVML by PCI
bus, so an index could name another device than the one assigned; a UUID cannot. A replica
that asked for none gets "" (no device at all).

After a server restart the adopted replicas keep what they had: `adopt` re-reserves the
devices named by the `CUDA_VISIBLE_DEVICES` the replica was started with (read back from
its environment or its fork record), so a new replica is never given a device in use. A
device named there that another replica holds too is held by both (logged). When the value
identifies fewer devices than the replica's instance type asks for (a replica started
before GPUs were placed, which saw every device; UUIDs recorded while NVML answered, read
back by an inventory of device-file indices), the missing count is reserved anyway from
the free devices, lowest index first, with a warning: the count of free GPUs stays right
even where which device the replica uses cannot be told. (A replica started before GPUs
were placed most likely uses device 0, CUDA's default, which is the first one reserved
when it is free.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from podium.backends.replica_env import ENV_VISIBLE_DEVICES
from podium.backends.resources import Gpus, node_devices

log = logging.getLogger("podium.backends")


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One GPU: its NVML index and UUID (None without NVML)."""

    index: int
    uuid: str | None = None

    @property
    def visible_id(self) -> str:
        """How `CUDA_VISIBLE_DEVICES` names it: the UUID when known, else the index."""
        return self.uuid or str(self.index)


def visible(devices: Sequence[GpuDevice]) -> str:
    """The value of `CUDA_VISIBLE_DEVICES` for a replica given `devices` ("" for none)."""
    return ",".join(d.visible_id for d in devices)


class GpuInventory:
    """The node's GPUs and their holders. Thread-safe (a lock of its own): starts assign
    from the backend's start threads, the poll releases, the controller asks `free`."""

    def __init__(self, devices: Sequence[GpuDevice] = ()) -> None:
        self._devices = tuple(devices)
        self._held: dict[str, tuple[GpuDevice, ...]] = {}  # replica id -> its devices
        self._lock = threading.Lock()

    @classmethod
    def detect(
        cls, gpus: Gpus | None = None, visible: str | None = None, *, from_env: bool = True
    ) -> GpuInventory:
        """This node's GPUs for replicas (`resources.node_devices`): NVML's (`gpus`, loaded
        there when not given), else the NVIDIA device files, else none; only those the
        server's `CUDA_VISIBLE_DEVICES` (`visible`, else the environment's unless
        `from_env` is False) names."""
        found = node_devices(gpus, visible, from_env=from_env)
        return cls([GpuDevice(i, uuid) for i, uuid in found])

    @property
    def total(self) -> int:
        return len(self._devices)

    def free(self, without: Collection[str] = ()) -> int:
        """How many devices no replica holds; with `without`, how many would be free if
        those replicas were gone (a device two replicas hold comes back once both are)."""
        with self._lock:
            taken = {d for rid, held in self._held.items() if rid not in without for d in held}
            return len(self._devices) - len(taken)

    def held_by(self, replica_id: str) -> tuple[GpuDevice, ...]:
        with self._lock:
            return self._held.get(replica_id, ())

    def assign(self, replica_id: str, n: int) -> tuple[GpuDevice, ...] | None:
        """`n` free devices for the replica (lowest indices first), or None when fewer than
        `n` are free (nothing is reserved then). () for `n` = 0. A replica that already
        holds devices keeps them (asked again, the same answer)."""
        with self._lock:
            if replica_id in self._held:
                return self._held[replica_id]
            if n <= 0:
                return ()
            taken = {d for held in self._held.values() for d in held}
            free = [d for d in self._devices if d not in taken]
            if len(free) < n:
                return None
            mine = tuple(free[:n])
            self._held[replica_id] = mine
            return mine

    def release(self, replica_id: str) -> None:
        """The replica's process has ended: its devices are free again (none: no-op)."""
        with self._lock:
            self._held.pop(replica_id, None)

    def adopt(
        self, replica_id: str, visible_devices: str | None, wanted: int | None = None
    ) -> tuple[GpuDevice, ...]:
        """Re-reserve for an adopted replica the devices its `CUDA_VISIBLE_DEVICES` names
        (UUIDs or indices). `wanted`: the GPUs its instance type asks for (None: unknown).
        A named device another replica holds already is held by both (logged: two
        replicas use it; it is free again only once both have ended). When the names
        identify fewer devices than the replica may use (`wanted`, or the count of names),
        free devices make up the count, lowest index first (logged; see the module
        docstring). Returns what it holds now."""
        names = [v.strip() for v in (visible_devices or "").split(",") if v.strip()]
        with self._lock:
            holder = {d: rid for rid, held in self._held.items() if rid != replica_id for d in held}
            mine = [d for d in self._devices if d.visible_id in names or str(d.index) in names]
            for d in mine:
                if d in holder:
                    log.warning(
                        "adopted replica %s was given GPU %s, which replica %s holds too: "
                        "both use it",
                        replica_id,
                        d.visible_id,
                        holder[d],
                    )
            want = max(len(names), wanted or 0)
            missing = want - len(mine)
            if missing > 0:
                spare = [d for d in self._devices if d not in holder and d not in mine]
                extra = spare[:missing]
                log.warning(
                    "adopted replica %s may use %d GPU(s) but its %s=%r names %d of this "
                    "node's: %s reserved in place of the others, so that no new replica is "
                    "given a device it may be using",
                    replica_id,
                    want,
                    ENV_VISIBLE_DEVICES,
                    visible_devices or "",
                    len(mine),
                    ", ".join(d.visible_id for d in extra) or "none is free to be",
                )
                mine += extra
            if mine:
                self._held[replica_id] = tuple(mine)
            return tuple(mine)
