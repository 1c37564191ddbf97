"""The local backend places GPUs: real replica processes (the fake replica, spawned) on a
node with two fake NVML GPUs; each reads its `CUDA_VISIBLE_DEVICES` from
`/proc/<pid>/environ`, as CUDA in the replica would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podium.backends.gpu_inventory import GpuDevice, GpuInventory
from podium.backends.launch import replica_command
from podium.backends.resources import Gpus
from podium.backends.zygote_pool import fork_record_path
from podium.core.errors import NoRoom
from podium.core.settings import Settings
from podium.core.spec import InstanceType
from podium.replica.main import build_parser
from tests.support.fake_nvml import fake_nvml
from tests.support.models import write_python_bundle
from tests.unit.backends.conftest import SyncLocal, launch, wait_exit, wait_for
from tests.unit.backends.test_local_processes import _candidate, _log_has

GPU = InstanceType(name="gpu-small", cpus=1, memory_mb=2048, gpus=1)
MODEL = Path("/m")


def _environ(pid: int | None) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(e.split("=", 1) for e in raw.decode().split("\0") if "=" in e)


def _visible(pid: int | None) -> str | None:
    """The replica process's CUDA_VISIBLE_DEVICES as its kernel environment holds it, once
    it has one: until the spawned child has exec'd, /proc shows the server's environment
    (copied by fork), which has none here. The backend sets it for every replica."""

    def read() -> tuple[str] | None:
        env = _environ(pid)
        return (env["CUDA_VISIBLE_DEVICES"],) if "CUDA_VISIBLE_DEVICES" in env else None

    return wait_for(read, "the replica's own environment")[0]


def _backend(
    settings: Settings, fake_python: str, gpus: int = 2, server_visible: str | None = None
) -> SyncLocal:
    """On `gpus` fake NVML GPUs, as a server whose CUDA_VISIBLE_DEVICES is `server_visible`
    (None: unset) sees them."""
    inventory = GpuInventory.detect(Gpus(fake_nvml(gpus)), server_visible, from_env=False)
    return SyncLocal(settings, python=fake_python, start_mode="spawn", gpus=inventory)


def test_each_replica_gets_its_own_gpus_and_a_cpu_one_none(
    settings: Settings, fake_python: str
) -> None:
    b = _backend(settings, fake_python)
    try:
        a = b.start(launch("demo-r1-a", MODEL, instance_type=GPU))
        c = b.start(launch("demo-r1-c", MODEL))  # cpu-small: asks for none
        g = b.start(launch("demo-r1-g", MODEL, instance_type=GPU))
        assert _visible(a.pid) == "GPU-fake-0"
        assert _visible(g.pid) == "GPU-fake-1"
        assert _visible(c.pid) == ""  # never a device it was not given
        assert b.room_for(launch("x", MODEL, instance_type=GPU).size) == 0
        assert b.room_for(launch("x", MODEL).size) is None
    finally:
        b.close()


def test_exhausted_start_is_refused_and_starts_once_a_replica_stopped(
    settings: Settings, fake_python: str
) -> None:
    b = _backend(settings, fake_python, gpus=1)
    try:
        first = b.start(launch("demo-r1-a", MODEL, instance_type=GPU))
        with pytest.raises(NoRoom, match="needs 1 GPU, 0 of this node's 1 free"):
            b.start(launch("demo-r1-b", MODEL, instance_type=GPU))
        assert {o.replica_id for o in b.poll()} == {"demo-r1-a"}  # nothing spawned
        b.stop(first.replica_id)
        assert b.room_for(GPU_SIZE) == 0  # stopping: the device is still held
        wait_exit(b, first.replica_id)
        assert b.room_for(GPU_SIZE) == 1  # released once its process ended
        second = b.start(launch("demo-r1-b", MODEL, instance_type=GPU))
        assert _visible(second.pid) == "GPU-fake-0"
    finally:
        b.close()


GPU_SIZE = launch("size", MODEL, instance_type=GPU).size


def test_a_crashed_replica_gives_its_gpu_back(settings: Settings, fake_python: str) -> None:
    b = _backend(settings, fake_python, gpus=1)
    try:
        crash = launch("demo-r1-a", MODEL, instance_type=GPU, env={"FAKE_MODE": "crash"})
        b.start(crash)
        wait_exit(b, "demo-r1-a")
        assert b.room_for(GPU_SIZE) == 1
    finally:
        b.close()


def test_a_start_that_fails_gives_its_gpu_back(settings: Settings, fake_python: str) -> None:
    b = _backend(settings, fake_python, gpus=1)
    try:
        b.start(launch("demo-r1-a", MODEL, instance_type=GPU))
        with pytest.raises(Exception, match="already running"):
            b.start(launch("demo-r1-a", MODEL, instance_type=GPU))
        assert b.room_for(GPU_SIZE) == 0  # the running one keeps its device
    finally:
        b.close()


def test_adoption_re_reserves_the_devices_an_adopted_replica_holds(
    settings: Settings, fake_python: str
) -> None:
    first = _backend(settings, fake_python)
    r = first.start(launch("demo-r1-h", MODEL, instance_type=GPU))
    r2 = first.start(launch("demo-r1-i", MODEL, instance_type=GPU))
    wait_for(lambda: _log_has(first, "demo-r1-i", "ready"), "the fake replica to start")
    first.stop(r.replica_id)
    wait_exit(first, r.replica_id)  # GPU-fake-0 free again; r2 keeps GPU-fake-1
    first.close(stop_replicas=False)

    second = _backend(settings, fake_python)
    try:
        assert [a.replica_id for a in second.adopt([_candidate(r2)])] == ["demo-r1-i"]
        assert second.room_for(GPU_SIZE) == 1
        fresh = second.start(launch("demo-r1-j", MODEL, instance_type=GPU))
        assert _visible(fresh.pid) == "GPU-fake-0"  # never the adopted replica's device
        with pytest.raises(NoRoom):
            second.start(launch("demo-r1-k", MODEL, instance_type=GPU))
    finally:
        second.close()


def test_replicas_get_only_the_gpus_the_server_was_given(
    settings: Settings, fake_python: str
) -> None:
    """A server started with CUDA_VISIBLE_DEVICES=2,3 (GPUs 0 and 1 kept for something
    else) gives its replicas 2 and 3, never 0 or 1."""
    b = _backend(settings, fake_python, gpus=4, server_visible="2,3")
    try:
        first = b.start(launch("demo-r1-a", MODEL, instance_type=GPU))
        second = b.start(launch("demo-r1-b", MODEL, instance_type=GPU))
        assert (_visible(first.pid), _visible(second.pid)) == ("GPU-fake-2", "GPU-fake-3")
        assert b.room_for(GPU_SIZE) == 0
        with pytest.raises(NoRoom):
            b.start(launch("demo-r1-c", MODEL, instance_type=GPU))
    finally:
        b.close()


def test_adoption_without_nvml_still_reserves_what_an_adopted_replica_uses(
    settings: Settings, fake_python: str
) -> None:
    """NVML answered when the replica started (it was given a UUID), not after the restart
    (the device files only give indices): the UUID matches nothing, but the replica's
    instance type asks for one GPU, so one stays reserved."""
    first = _backend(settings, fake_python)
    r = first.start(launch("demo-r1-h", MODEL, instance_type=GPU))
    wait_for(lambda: _log_has(first, "demo-r1-h", "ready"), "the fake replica to start")
    first.close(stop_replicas=False)

    indices_only = GpuInventory([GpuDevice(0), GpuDevice(1)])
    second = SyncLocal(settings, python=fake_python, start_mode="spawn", gpus=indices_only)
    try:
        assert [a.replica_id for a in second.adopt([_candidate(r)])] == ["demo-r1-h"]
        assert second.room_for(GPU_SIZE) == 1  # not 2: the adopted replica uses one
        fresh = second.start(launch("demo-r1-j", MODEL, instance_type=GPU))
        assert _visible(fresh.pid) == "1"
        with pytest.raises(NoRoom):
            second.start(launch("demo-r1-k", MODEL, instance_type=GPU))
    finally:
        second.close()


def test_engine_args_reach_the_replica_and_devices_override_the_endpoint_env(
    tmp_path: Path,
) -> None:
    """The runtime's options travel as `--engine-arg KEY=VALUE`, which the replica parses;
    an endpoint's own CUDA_VISIBLE_DEVICES never widens what the backend gave."""
    run = launch(
        "demo-r1-a",
        MODEL,
        runtime="transformers",
        engine_args={"device": "cuda", "dtype": "bfloat16"},
        env={"CUDA_VISIBLE_DEVICES": "0,1,2,3"},
    )
    argv, env = replica_command(run, MODEL, 5, tmp_path / "s.json", "python", "GPU-fake-1")
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-fake-1"
    args = build_parser().parse_args(argv[3:])
    assert dict(args.engine_arg) == {"device": "cuda", "dtype": "bfloat16"}


def test_gpu_replicas_are_spawned_and_cpu_ones_fork_from_a_zygote_that_sees_no_gpu(
    settings: Settings, tmp_path: Path
) -> None:
    """CUDA cannot be used in a child forked from a process that initialised it: a replica
    given GPUs starts fresh (spawn), the zygote runs with no visible GPU, and a CPU replica
    forked from it records its empty CUDA_VISIBLE_DEVICES for adoption."""
    bundle = write_python_bundle(tmp_path / "bundle")
    inventory = GpuInventory.detect(Gpus(fake_nvml(1)), from_env=False)
    b = SyncLocal(settings, start_mode="fork", gpus=inventory)
    try:
        b.prewarm("python")
        assert b.zygotes.wait_ready("python", 60), "the zygote did not become ready"
        cpu = b.start(launch("demo-r1-c", bundle))
        gpu = b.start(launch("demo-r1-g", bundle, instance_type=GPU))
        assert (cpu.start_mode, gpu.start_mode) == ("fork", "spawn")
        assert _visible(gpu.pid) == "GPU-fake-0"
        assert _visible(cpu.pid) == ""  # the zygote's own environment: no GPU either
        record = json.loads(
            fork_record_path(settings.run_dir / "demo-r1-c.status.json").read_text()
        )
        assert record["env"]["CUDA_VISIBLE_DEVICES"] == ""
    finally:
        b.close()
