"""What a replica's processes use now: CPU and resident memory (psutil, over the replica's
process tree) and GPU utilisation and memory (NVML), for the metrics history.

`cpu_percent` needs two readings of one process: `ProcessMeter` keeps the `psutil.Process`
objects of every replica between calls (a process seen for the first time reads 0.0; a
pid reused by another process is a new object, since psutil compares pid and start time).

`Gpus` is the seam to NVML (`nvidia-ml-py`, imported as `pynvml` on first use, never at
import time). Without the package, without a driver or without a GPU, `nvmlInit` fails and
`Gpus` reports nothing: a replica's GPU figures are None, never an error. With NVML, one
scan per call lists every device's utilisation and its compute processes; a replica's
figures are the memory its own processes hold and the utilisation of the devices they run
on (NVML reports utilisation per device: two replicas sharing a device both show it).

`node_devices` is this node's GPUs for placement (the API's size check and the local
backend's `gpu_inventory` both count them, so the two agree): NVML's devices, else the
device files, less what the server's own `CUDA_VISIBLE_DEVICES` leaves out (an operator
who gives the server GPUs 2 and 3 gives its replicas only those) and less GPUs in MIG mode
(CUDA exposes no device under a MIG-enabled GPU's UUID, so a replica given one would see
none: MIG instances are not placed by Podium).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from podium.backends.base import ReplicaResources
from podium.backends.replica_env import ENV_VISIBLE_DEVICES
from podium.core.resources_spec import NodeCapacity

log = logging.getLogger("podium.backends")

_DEVICE_FILE = re.compile(r"/nvidia(\d+)$")
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)
GPU_DEVICE_FILES = "/dev/nvidia[0-9]*"  # one per NVIDIA GPU (not nvidiactl, nvidia-uvm)


@dataclass(frozen=True, slots=True)
class Target:
    """One replica to measure: its root process and the limits its instance type sets."""

    pid: int
    cpus: float | None = None
    gpus: int | None = None


@dataclass(slots=True)
class _Device:
    util_percent: float
    memory_by_pid: dict[int, int] = field(default_factory=dict)


class Gpus:
    """NVML, or nothing (see the module docstring). `load()` initialises NVML once; tests
    inject a fake `pynvml` module into `sys.modules` before it."""

    def __init__(self, nvml: Any | None) -> None:
        self._nvml = nvml

    @classmethod
    def load(cls) -> Gpus:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            log.debug("nvidia-ml-py is not installed: no GPU figures")
            return cls(None)
        try:
            nvml.nvmlInit()
        except Exception as e:  # NVMLError (no driver, no device) or anything odd: no GPU
            log.info("NVML unavailable (%s): no GPU figures", e)
            return cls(None)
        return cls(nvml)

    @property
    def present(self) -> bool:
        return self._nvml is not None

    def device_count(self) -> int:
        """How many GPUs NVML sees; 0 without NVML or when it cannot tell."""
        if self._nvml is None:
            return 0
        try:
            return int(self._nvml.nvmlDeviceGetCount())
        except Exception as e:  # NVMLError: no GPU after all
            log.info("NVML could not count GPUs (%s): none", e)
            return 0

    def identities(self) -> list[tuple[int, str | None]]:
        """(index, UUID) of each device NVML sees, in NVML's order (PCI bus order); the UUID
        is None when NVML cannot tell it. [] without NVML or when it fails."""
        nvml = self._nvml
        if nvml is None:
            return []
        out: list[tuple[int, str | None]] = []
        try:
            for i in range(int(nvml.nvmlDeviceGetCount())):
                uuid: str | None = None
                getter = getattr(nvml, "nvmlDeviceGetUUID", None)
                if getter is not None:
                    with contextlib.suppress(Exception):  # an old driver: index only
                        raw = getter(nvml.nvmlDeviceGetHandleByIndex(i))
                        uuid = raw.decode() if isinstance(raw, bytes) else str(raw)
                out.append((i, uuid or None))
        except Exception as e:  # NVMLError: no device list after all
            log.info("NVML could not list GPUs (%s): none", e)
            return []
        return out

    def mig_enabled(self, index: int) -> bool:
        """Whether the device at this NVML index runs in MIG mode (False without NVML, on a
        driver or device without MIG, or when NVML cannot tell)."""
        nvml = self._nvml
        getter = getattr(nvml, "nvmlDeviceGetMigMode", None)
        if nvml is None or getter is None:
            return False
        try:
            current, _pending = getter(nvml.nvmlDeviceGetHandleByIndex(index))
        except Exception:  # NVMLError_NotSupported (pre-Ampere) or anything odd: no MIG
            return False
        return bool(current)

    def scan(self) -> list[_Device]:
        """Each device's utilisation and the GPU memory of each compute process on it;
        [] without NVML, or when a scan fails (a device lost mid-way)."""
        nvml = self._nvml
        if nvml is None:
            return []
        devices: list[_Device] = []
        try:
            for i in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                device = _Device(util)
                for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    used = getattr(proc, "usedGpuMemory", None)  # None: not allowed to see
                    device.memory_by_pid[int(proc.pid)] = int(used) if used else 0
                devices.append(device)
        except Exception as e:  # an NVMLError mid-scan: no figures this time
            log.warning("NVML scan failed: %s", e)
            return []
        return devices

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None


def gpu_use(devices: list[_Device], pids: set[int]) -> tuple[float | None, int | None]:
    """(utilisation %, memory bytes) of the devices these processes hold; (None, None)
    when they hold none. Utilisation adds up per device (100 = one device busy)."""
    util, memory, used = 0.0, 0, False
    for device in devices:
        mine = [m for pid, m in device.memory_by_pid.items() if pid in pids]
        if mine:
            used = True
            util += device.util_percent
            memory += sum(mine)
    return (util, memory) if used else (None, None)


class ProcessMeter:
    """CPU % and RSS of process trees, keeping the process objects between readings."""

    def __init__(self) -> None:
        self._procs: dict[str, dict[int, psutil.Process]] = {}  # replica -> pid -> process

    def tree(self, replica_id: str, root_pid: int) -> tuple[float, int, set[int]] | None:
        """(cpu %, rss bytes, pids) of the root process and its descendants; None once the
        root is gone."""
        known = self._procs.get(replica_id, {})
        try:
            root = psutil.Process(root_pid)
            found = [root, *root.children(recursive=True)]
        except _GONE:
            self._procs.pop(replica_id, None)
            return None
        kept: dict[int, psutil.Process] = {}
        cpu, rss = 0.0, 0
        for proc in found:
            old = known.get(proc.pid)
            proc = old if old is not None and old == proc else proc  # same pid, same start
            try:
                cpu += proc.cpu_percent(None)  # since the last call on this object (0.0 first)
                rss += proc.memory_info().rss
            except _GONE:
                continue
            kept[proc.pid] = proc
        self._procs[replica_id] = kept
        return cpu, rss, set(kept)

    def retain(self, replica_ids: set[str]) -> None:
        """Forget the processes of replicas no longer measured."""
        for rid in [r for r in self._procs if r not in replica_ids]:
            del self._procs[rid]


class ResourceMeter:
    """`ReplicaResources` of a backend's replicas on this machine. Blocking (it walks
    /proc and calls NVML): a backend calls it from a worker thread."""

    def __init__(self, gpus: Gpus | None = None) -> None:
        self._gpus = gpus
        self._processes = ProcessMeter()
        self._lock = threading.Lock()

    def measure(self, targets: Mapping[str, Target]) -> dict[str, ReplicaResources]:
        with self._lock:
            if self._gpus is None:
                self._gpus = Gpus.load()
            devices = self._gpus.scan()
            self._processes.retain(set(targets))
            out: dict[str, ReplicaResources] = {}
            for rid, target in targets.items():
                tree = self._processes.tree(rid, target.pid)
                if tree is None:
                    continue
                cpu, rss, pids = tree
                util, memory = gpu_use(devices, pids)
                out[rid] = ReplicaResources(
                    cpu_percent=cpu,
                    rss_bytes=rss,
                    gpu_util_percent=util,
                    gpu_memory_bytes=memory,
                    cpus=target.cpus,
                    gpus=target.gpus,
                )
            return out

    def close(self) -> None:
        with self._lock:
            if self._gpus is not None:
                self._gpus.close()


def node_devices(
    gpus: Gpus | None = None, visible: str | None = None, *, from_env: bool = True
) -> list[tuple[int, str | None]]:
    """(index, UUID) of each GPU the server may give its replicas: NVML's devices (`gpus`,
    loaded here when not given, and closed again when loaded here) that are not in MIG
    mode, or without NVML the device files `/dev/nvidia0`, `/dev/nvidia1`, … (UUID None);
    then only those the server's `CUDA_VISIBLE_DEVICES` names (`visible`; by default read
    from the environment unless `from_env` is False). What is left out is logged."""
    own = gpus is None
    nvml = Gpus.load() if gpus is None else gpus
    try:
        if nvml.present:
            found = nvml.identities()
            mig = [i for i, _ in found if nvml.mig_enabled(i)]
            if mig:
                log.warning(
                    "GPU(s) %s are in MIG mode: not given to replicas (Podium does not "
                    "place MIG instances)",
                    ", ".join(map(str, mig)),
                )
            devices = [(i, uuid) for i, uuid in found if i not in mig]
        else:
            files = (_DEVICE_FILE.search(path) for path in glob.glob(GPU_DEVICE_FILES))
            devices = [(i, None) for i in sorted(int(m.group(1)) for m in files if m)]
    finally:
        if own:
            nvml.close()
    if visible is None and from_env:
        visible = os.environ.get(ENV_VISIBLE_DEVICES)
    return devices if visible is None else visible_to_server(devices, visible)


def visible_to_server(
    devices: list[tuple[int, str | None]], visible: str
) -> list[tuple[int, str | None]]:
    """The devices the server's `CUDA_VISIBLE_DEVICES` (`visible`) names, in its order: an
    index (NVML's, PCI bus order, as `nvidia-smi` numbers them), a UUID or a unique prefix
    of one. As CUDA does, the entries from the first one that names no device on are left
    out ("" or "-1": none at all); the ones left out are logged."""
    kept: list[tuple[int, str | None]] = []
    entries = [e.strip() for e in visible.split(",")]
    for n, entry in enumerate(entries):
        match = [d for d in devices if entry == str(d[0]) or _names_uuid(entry, d[1])]
        if len(match) != 1:
            if entry or len(entries) > 1:
                log.warning(
                    "%s=%s: %r names no single GPU of this node (MIG instances are not "
                    "placed): %s left out",
                    ENV_VISIBLE_DEVICES,
                    visible,
                    entry,
                    ", ".join(repr(e) for e in entries[n:]),
                )
            break
        if match[0] not in kept:
            kept.append(match[0])
    left = [str(d[0]) for d in devices if d not in kept]
    if left:
        log.info(
            "%s=%s: GPU(s) %s of this node are not given to replicas",
            ENV_VISIBLE_DEVICES,
            visible,
            ", ".join(left),
        )
    return kept


def _names_uuid(entry: str, uuid: str | None) -> bool:
    """Whether a `CUDA_VISIBLE_DEVICES` entry names this UUID (whole, or a prefix of it that
    starts with "GPU-", as CUDA accepts)."""
    return uuid is not None and entry.startswith("GPU-") and uuid.startswith(entry)


def node_gpus() -> int:
    """How many GPUs this node gives replicas (`node_devices`): the one count that the
    size check, the frameworks catalog and a GPU preset's start all use, and the one the
    local backend places replicas on."""
    return len(node_devices())


@functools.cache
def node_capacity() -> NodeCapacity:
    """This machine's CPUs, memory and GPUs (`node_gpus`), measured once per process: a
    GPU added or a container resized later is seen only after the server restarts. It is
    the node the server runs on (the local backend's), wherever a backend starts replicas."""
    memory_mb = psutil.virtual_memory().total // (1024 * 1024)
    return NodeCapacity(cpus=os.cpu_count() or 1, memory_mb=memory_mb, gpus=node_gpus())
