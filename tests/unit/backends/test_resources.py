"""What a replica uses: CPU and memory of its real process tree (psutil), GPU figures
through the NVML seam, absent (no package, or NVML fails to start) and faked (a `pynvml`
module with known figures injected into `sys.modules`)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from podium.backends import external, resources
from podium.backends.resources import Gpus, ResourceMeter, Target, node_capacity
from podium.core.resources_spec import NodeCapacity
from podium.core.spec import InstanceType
from tests.support.memory_tree import MiB, parent_with_a_hungry_child
from tests.unit.backends.conftest import SyncLocal, launch, wait_for

HELD_MB = 64


@pytest.fixture
def busy() -> Iterator[subprocess.Popen[bytes]]:
    """A process that keeps one core busy until the test ends."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield proc
    proc.kill()
    proc.wait(30)


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def test_cpu_needs_two_readings_of_the_same_process(busy: subprocess.Popen[bytes]) -> None:
    meter = ResourceMeter(Gpus(None))
    first = meter.measure({"r1": Target(busy.pid, cpus=2.0, gpus=0)})["r1"]
    assert first.cpu_percent == 0.0  # a first reading has nothing to compare with
    assert (first.cpus, first.gpus) == (2.0, 0)
    used = cpu_seconds(busy.pid)
    wait_for(lambda: cpu_seconds(busy.pid) > used + 0.05, "the busy process to use CPU")
    second = meter.measure({"r1": Target(busy.pid)})["r1"]
    assert second.cpu_percent > 0.0  # the same psutil object, read again
    assert second.rss_bytes > 0


def test_memory_is_the_whole_process_tree() -> None:
    meter = ResourceMeter(Gpus(None))
    with parent_with_a_hungry_child(HELD_MB) as tree:
        got = meter.measure({"r1": Target(tree.parent)})["r1"]
        parent_only = psutil.Process(tree.parent).memory_info().rss
    assert parent_only < HELD_MB * MiB // 2
    assert got.rss_bytes >= parent_only + HELD_MB * MiB
    assert got.gpu_util_percent is None and got.gpu_memory_bytes is None


def test_a_gone_replica_is_left_out() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    assert ResourceMeter(Gpus(None)).measure({"gone": Target(proc.pid)}) == {}


# ---------------------------------------------------------------- NVML


class NVMLError(Exception):
    pass


def fake_nvml(
    devices: list[tuple[int, list[tuple[int, int | None]]]], *, init_fails: bool = False
) -> types.ModuleType:
    """A `pynvml` with these devices: (utilisation %, [(pid, used memory bytes)])."""
    nvml: Any = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.calls = []

    def init() -> None:
        nvml.calls.append("init")
        if init_fails:
            raise NVMLError("Driver Not Loaded")

    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: nvml.calls.append("shutdown")
    nvml.nvmlDeviceGetCount = lambda: len(devices)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(
        gpu=devices[h][0], memory=0
    )
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in devices[h][1]
    ]
    return nvml


def test_no_nvml_package_means_no_gpu_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    gpus = Gpus.load()
    assert not gpus.present and gpus.scan() == []
    got = ResourceMeter().measure({"me": Target(os.getpid())})["me"]
    assert got.gpu_util_percent is None and got.gpu_memory_bytes is None


def test_nvml_that_fails_to_start_means_no_gpu_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml([(90, [(os.getpid(), 2**30)])], init_fails=True)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    got = ResourceMeter().measure({"me": Target(os.getpid())})["me"]
    assert nvml.calls == ["init"]
    assert got.gpu_util_percent is None and got.gpu_memory_bytes is None


def test_a_fake_nvml_gives_the_replicas_gpu_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    with parent_with_a_hungry_child(1) as tree, parent_with_a_hungry_child(1) as other:
        nvml = fake_nvml(
            [
                (40, [(tree.child, 3 * 2**30), (99999999, 2**30)]),  # a child of r1's root
                (75, [(tree.parent, None)]),  # memory not visible: counted as 0
                (10, [(other.parent + 10**7, 2**30)]),  # nobody we measure
            ]
        )
        monkeypatch.setitem(sys.modules, "pynvml", nvml)
        meter = ResourceMeter()
        got = meter.measure({"r1": Target(tree.parent, gpus=2), "r2": Target(other.parent)})
        meter.close()
    assert (got["r1"].gpu_util_percent, got["r1"].gpu_memory_bytes) == (115.0, 3 * 2**30)
    assert got["r1"].gpus == 2
    assert (got["r2"].gpu_util_percent, got["r2"].gpu_memory_bytes) == (None, None)
    assert nvml.calls == ["init", "shutdown"]  # initialised once, shut down on close


def test_a_failing_nvml_scan_gives_no_figures_this_time(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml([(40, [(os.getpid(), 2**30)])])

    def lost(handle: int) -> list[Any]:
        raise NVMLError("GPU is lost")

    nvml.nvmlDeviceGetComputeRunningProcesses = lost
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    got = ResourceMeter().measure({"me": Target(os.getpid())})["me"]
    assert got.gpu_util_percent is None and got.rss_bytes > 0


def test_node_capacity_counts_nvml_gpus_else_the_device_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The node's figures the API checks `resources` against (`node_capacity`, measured
    once per process: the cache is bypassed here). Its GPUs are NVML's count; without
    NVML, the /dev/nvidiaN files (review 14, finding 14: the catalog counted those, the
    size check NVML's)."""
    measure = node_capacity.__wrapped__
    monkeypatch.setattr(resources, "GPU_DEVICE_FILES", str(tmp_path / "nvidia[0-9]*"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    bare = measure()
    assert bare.gpus == 0 and bare.cpus == os.cpu_count() and bare.memory_mb > 0
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    assert measure().gpus == 2  # no NVML package: the device files
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([(0, [])], init_fails=True))
    assert measure().gpus == 2  # NVML cannot start (no driver): the device files
    nvml = fake_nvml([(0, []), (0, []), (0, [])])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert measure().gpus == 3  # NVML's count wins
    assert nvml.calls == ["init", "shutdown"]


def test_a_preset_sees_the_gpus_the_size_check_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """`gpu_visible` (a GPU preset's start, the frameworks catalog) reads the node's one GPU
    count, hidden by CUDA_VISIBLE_DEVICES="" or -1."""
    one_gpu = NodeCapacity(cpus=1, memory_mb=1024, gpus=1)
    monkeypatch.setattr(external, "node_capacity", lambda: one_gpu)
    assert external.gpu_visible({})
    assert not external.gpu_visible({"CUDA_VISIBLE_DEVICES": "-1"})
    monkeypatch.setattr(external, "node_capacity", lambda: replace(one_gpu, gpus=0))
    assert not external.gpu_visible({})


# ---------------------------------------------------------------- the local backend


def test_the_local_backend_measures_its_replicas(
    settings: Any, fake_python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    b = SyncLocal(settings, python=fake_python)
    it = InstanceType(name="cpu-medium", cpus=2, memory_mb=4096)
    env = {"FAKE_MODE": "alloc", "FAKE_ALLOC_MB": str(HELD_MB)}
    b.start(launch("demo-r1-m", Path("/m"), instance_type=it, env=env))

    def holding() -> Any:
        got = b.resources(["demo-r1-m", "demo-r9-unknown"])
        one = got.get("demo-r1-m")
        return got if one is not None and one.rss_bytes >= HELD_MB * MiB else None

    got = wait_for(holding, "the replica to hold its memory")
    assert set(got) == {"demo-r1-m"}  # an unknown replica is left out
    one = got["demo-r1-m"]
    assert (one.cpus, one.gpus) == (2.0, 0)
    assert one.gpu_util_percent is None and one.gpu_memory_bytes is None
    b.close()
