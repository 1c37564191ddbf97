"""A fake `pynvml` (the NVML seam of `backends.resources.Gpus`) with N idle GPUs, for tests
of GPU placement on machines without one, and fixtures for a node with one GPU or none
(what the API's checks measure: `resources.node_capacity`)."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from podium.backends.resources import node_capacity


class NVMLError(Exception):
    pass


def fake_nvml(count: int) -> Any:
    """A `pynvml` module object that sees `count` idle devices, UUIDs `GPU-fake-<i>`."""
    nvml: Any = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.nvmlInit = lambda: None
    nvml.nvmlShutdown = lambda: None
    nvml.nvmlDeviceGetCount = lambda: count
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetUUID = lambda h: f"GPU-fake-{h}"
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=0, memory=0)
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda h: []
    return nvml


def _node_with(monkeypatch: pytest.MonkeyPatch, count: int) -> Iterator[None]:
    """This process sees a node with `count` GPUs (through NVML, the seam the API's size
    check and the local backend read) until the test ends."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(count))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # all `count` are the server's
    node_capacity.cache_clear()  # measured once per process: measure the fake node
    yield
    node_capacity.cache_clear()  # the next test measures the real node again


@pytest.fixture
def one_gpu_node(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _node_with(monkeypatch, 1)


@pytest.fixture
def no_gpu_node(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _node_with(monkeypatch, 0)
