"""The node's GPU inventory: built from (fake) NVML, assignment, exhaustion, release and
adoption, and the `CUDA_VISIBLE_DEVICES` it names devices by."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from podium.backends.gpu_inventory import GpuDevice, GpuInventory, visible
from podium.backends.resources import Gpus, node_capacity
from tests.support.fake_nvml import fake_nvml


def _inventory(n: int, server_visible: str | None = None, nvml: Any = None) -> GpuInventory:
    """`n` fake NVML GPUs, as a server whose CUDA_VISIBLE_DEVICES is `server_visible` (None:
    unset, whatever this test process has) sees them."""
    gpus = Gpus(nvml or fake_nvml(n))
    return GpuInventory.detect(gpus, server_visible, from_env=server_visible is not None)


def _ids(inv: GpuInventory) -> str:
    """The node's devices in the inventory, as `CUDA_VISIBLE_DEVICES` would name them."""
    got = inv.assign("probe", inv.total) or ()
    inv.release("probe")
    return visible(got)


def test_detect_reads_indices_and_uuids_from_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(2))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    inv = GpuInventory.detect()  # loads the injected module itself
    assert inv.total == 2 and inv.free() == 2
    assert inv.assign("a", 2) == (GpuDevice(0, "GPU-fake-0"), GpuDevice(1, "GPU-fake-1"))


def test_detect_without_nvml_falls_back_to_device_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(
        "podium.backends.resources.glob.glob",
        lambda pattern: ["/dev/nvidia1", "/dev/nvidia0"],
    )
    inv = GpuInventory.detect()
    assert inv.total == 2
    assert visible(inv.assign("a", 2) or ()) == "0,1"  # no UUID: indices


def test_no_gpu_node_has_none_and_zero_gpu_replicas_get_an_empty_list() -> None:
    inv = GpuInventory()
    assert inv.total == 0 and inv.free() == 0
    assert inv.assign("cpu", 0) == ()
    assert visible(()) == ""
    assert inv.assign("gpu", 1) is None


def test_assign_gives_each_replica_its_own_devices_until_exhausted() -> None:
    inv = _inventory(3)
    a = inv.assign("a", 1)
    b = inv.assign("b", 2)
    assert a is not None and b is not None
    assert set(a).isdisjoint(b)
    assert visible(a) == "GPU-fake-0" and visible(b) == "GPU-fake-1,GPU-fake-2"
    assert inv.free() == 0
    assert inv.assign("c", 1) is None  # exhausted: nothing reserved
    assert inv.held_by("c") == ()
    assert inv.assign("a", 1) == a  # asked again: the same devices


def test_release_frees_the_devices_for_the_next_replica() -> None:
    inv = _inventory(2)
    inv.assign("a", 2)
    assert inv.assign("b", 1) is None
    inv.release("a")
    inv.release("a")  # twice (stop, then exit): no-op
    assert inv.free() == 2
    assert visible(inv.assign("b", 1) or ()) == "GPU-fake-0"


def test_too_many_asked_never_fits() -> None:
    inv = _inventory(2)
    assert inv.assign("big", 3) is None
    assert inv.free() == 2


def test_adopt_reserves_what_the_environment_names() -> None:
    inv = _inventory(3)
    assert inv.adopt("old", "GPU-fake-1,GPU-fake-2") == (
        GpuDevice(1, "GPU-fake-1"),
        GpuDevice(2, "GPU-fake-2"),
    )
    assert inv.free() == 1
    assert visible(inv.assign("new", 1) or ()) == "GPU-fake-0"  # never an adopted one


def test_adopt_accepts_indices_and_a_cpu_replica_holds_nothing() -> None:
    inv = _inventory(3)
    assert inv.adopt("old", "1") == (GpuDevice(1, "GPU-fake-1"),)
    assert inv.adopt("cpu", "", 0) == () and inv.adopt("cpu", None) == ()
    assert inv.free() == 2


# ------------------------------------------------ the server's CUDA_VISIBLE_DEVICES (8)


def test_the_server_s_cuda_visible_devices_limits_the_inventory() -> None:
    """An operator who gives the server GPUs 2 and 3 gives its replicas only those: by
    index (NVML's, as nvidia-smi numbers them), by UUID or by a unique UUID prefix."""
    assert _ids(_inventory(4, "2,3")) == "GPU-fake-2,GPU-fake-3"
    assert _ids(_inventory(4, "GPU-fake-3, 1")) == "GPU-fake-3,GPU-fake-1"
    assert _ids(_inventory(4, "GPU-fake-2")) == "GPU-fake-2"
    assert _ids(_inventory(4, "1,1")) == "GPU-fake-1"
    inv = _inventory(4, "2,3")
    assert inv.total == 2
    assert inv.assign("a", 2) == (GpuDevice(2, "GPU-fake-2"), GpuDevice(3, "GPU-fake-3"))
    assert inv.assign("b", 1) is None  # 0 and 1 are never handed out


def test_no_visible_device_means_no_gpu() -> None:
    assert _inventory(2, "").total == 0
    assert _inventory(2, "-1").total == 0


def test_entries_from_the_first_unknown_one_on_are_left_out_as_cuda_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="podium.backends"):
        inv = _inventory(4, "2,9,3")
    assert _ids(inv) == "GPU-fake-2"
    assert "'9' names no single GPU of this node" in caplog.text
    assert "'9', '3' left out" in caplog.text
    assert _ids(_inventory(4, "GPU-fake")) == ""  # a prefix of all four: ambiguous
    assert _ids(_inventory(2, "MIG-1234,0")) == ""  # a MIG instance: not placed


def test_gpus_in_mig_mode_are_left_out() -> None:
    """CUDA exposes no device under a MIG-enabled GPU's UUID: a replica given one would
    see none."""
    nvml = fake_nvml(3)
    nvml.nvmlDeviceGetMigMode = lambda h: (1, 1) if h == 1 else (0, 0)
    assert _ids(_inventory(3, nvml=nvml)) == "GPU-fake-0,GPU-fake-2"


def test_the_api_s_count_and_the_inventory_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(4))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-fake-1,GPU-fake-3")
    node_capacity.cache_clear()
    try:
        assert node_capacity().gpus == 2  # what the 422 checks against
        assert GpuInventory.detect().total == 2  # what the local backend places on
    finally:
        node_capacity.cache_clear()


# ------------------------------------------------ adoption when the record falls short (10)


def test_adopting_a_replica_without_a_record_reserves_its_count_anyway(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A replica started before GPUs were placed has no CUDA_VISIBLE_DEVICES: it saw every
    device and most likely uses 0, CUDA's default. Its instance type's count is reserved,
    lowest index first, so that a new replica is not given a device it may be using."""
    inv = _inventory(2)
    with caplog.at_level(logging.WARNING, logger="podium.backends"):
        assert inv.adopt("old", None, 1) == (GpuDevice(0, "GPU-fake-0"),)
    assert "adopted replica old may use 1 GPU(s)" in caplog.text
    assert inv.free() == 1
    assert visible(inv.assign("new", 1) or ()) == "GPU-fake-1"
    assert inv.assign("more", 1) is None


def test_uuids_recorded_under_nvml_read_back_by_an_index_only_inventory_reserve_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """NVML answered when the replica started, not after the restart (device files only):
    its UUIDs match no index, but the devices it uses are still in use."""
    inv = GpuInventory([GpuDevice(0), GpuDevice(1), GpuDevice(2)])
    with caplog.at_level(logging.WARNING, logger="podium.backends"):
        held = inv.adopt("old", "GPU-5f3c,GPU-77aa", 2)
    assert held == (GpuDevice(0), GpuDevice(1))
    assert "names 0 of this node's" in caplog.text
    assert inv.free() == 1
    # the count alone (a `custom` size, the instance type unknown): as many as named
    inv = GpuInventory([GpuDevice(0), GpuDevice(1), GpuDevice(2)])
    assert len(inv.adopt("old", "GPU-5f3c,GPU-77aa")) == 2


def test_a_device_two_adopted_replicas_name_is_held_by_both(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inv = _inventory(2)
    inv.adopt("a", "GPU-fake-0", 1)
    with caplog.at_level(logging.WARNING, logger="podium.backends"):
        assert inv.adopt("b", "GPU-fake-0", 1) == (GpuDevice(0, "GPU-fake-0"),)
    assert "which replica a holds too: both use it" in caplog.text
    assert inv.free() == 1  # one device in use, not two
    inv.release("a")
    assert inv.free() == 1  # b still uses it
    assert visible(inv.assign("new", 1) or ()) == "GPU-fake-1"
    inv.release("b")
    assert inv.free() == 1
