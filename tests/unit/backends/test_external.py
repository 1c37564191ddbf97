"""External servers as replicas: framework `command` and presets, with real processes.

Preset programs (llama-server, vllm, …) are stand-in shell scripts on the launch's PATH
that run tests/support/byo_server.py, so the whole path (checks, argv, env, start, probe,
stop, adopt) is exercised without installing any inference server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from podium.backends import external
from podium.backends.base import AdoptCandidate, ObservedReplica
from podium.backends.gpu_inventory import GpuInventory
from podium.backends.resources import Gpus
from podium.core.errors import Invalid, LoadError
from podium.core.phases import ExitReason
from podium.core.settings import Settings
from podium.core.spec import CommandSpec, EndpointSpec, InstanceType
from podium.runtimes import presets
from podium.runtimes.registry import get_runtime, known_runtimes
from tests.support.fake_nvml import fake_nvml
from tests.support.server import free_port
from tests.unit.backends.conftest import SyncLocal, launch, wait_exit, wait_exits, wait_for

BYO = Path(__file__).resolve().parents[2] / "support" / "byo_server.py"
GPU = InstanceType(name="gpu-small", cpus=4, memory_mb=16384, gpus=1)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "message.txt").write_text("hello from the model", encoding="utf-8")
    return folder


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A folder of stand-in server programs that all run byo_server.py on $PORT."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("llama-server", "vllm", "tritonserver", "torchserve", "text-generation-launcher"):
        script = folder / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{BYO}"\n')
        script.chmod(0o755)
    return folder


def _path_env(folder: Path) -> dict[str, str]:
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}


def _byo(*args: str, port: int | None = None, health: str = "/health") -> CommandSpec:
    return CommandSpec(
        command=sys.executable, args=[str(BYO), *args], port=port, health_route=health
    )


def _get(r: ObservedReplica, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"http://{r.host}:{r.port}{path}", timeout=5)
    except httpx.TransportError:
        return None


def _wait_healthy(b: SyncLocal, r: ObservedReplica, path: str = "/health") -> None:
    def healthy() -> bool:
        alive = {o.replica_id for o in b.poll() if o.alive}
        assert r.replica_id in alive, f"server exited: {b.logs(r.replica_id)[-20:]}"
        resp = _get(r, path)
        return resp is not None and resp.status_code == 200

    wait_for(healthy, f"{r.replica_id} to answer {path}")


# ---------------------------------------------------------------------- command


def test_command_server_runs_with_port_and_model_path(
    backend: SyncLocal, model: Path, settings: Settings
) -> None:
    spec = _byo("--port", "{port}")
    r = backend.start(
        launch("byo-r1-a", model, runtime="command", command=spec, env={"BYO_ECHO": "yes"})
    )
    _wait_healthy(backend, r)
    answer = httpx.post(f"http://{r.host}:{r.port}/some/path?q=1", content=b"ping", timeout=10)
    assert answer.json() == {
        "method": "POST",
        "path": "/some/path?q=1",
        "body": "ping",
        "model_file": "hello from the model",
        "env": "yes",
    }
    assert any("listening on 127.0.0.1" in line for line in backend.logs("byo-r1-a"))

    backend.stop("byo-r1-a")
    report = wait_exit(backend, "byo-r1-a")
    assert report.exit_reason is ExitReason.STOPPED and report.exit_code == 0


def test_command_fixed_port(backend: SyncLocal, model: Path) -> None:
    port = free_port()
    r = backend.start(launch("byo-r1-b", model, runtime="command", command=_byo(port=port)))
    assert r.port == port
    _wait_healthy(backend, r)


def test_command_exit_codes_are_crashes(backend: SyncLocal, model: Path) -> None:
    # Only Podium's own loader can say "failed to load" (issue 8): a server of the user's
    # that exits with 3 has crashed, like one exiting with 1; its last log lines say why.
    backend.start(launch("byo-r1-c", model, runtime="command", command=_byo("--exit-code", "3")))
    backend.start(launch("byo-r1-d", model, runtime="command", command=_byo("--exit-code", "1")))
    reports = wait_exits(backend, "byo-r1-c", "byo-r1-d")
    three, one = reports["byo-r1-c"], reports["byo-r1-d"]
    assert three.exit_reason is ExitReason.CRASHED and three.exit_code == 3
    assert three.error == "exit code 3"
    assert any("exiting with 3" in line for line in backend.logs("byo-r1-c"))
    assert one.exit_reason is ExitReason.CRASHED and one.exit_code == 1


def test_missing_command_is_a_load_error(backend: SyncLocal, model: Path) -> None:
    missing = CommandSpec(command="no-such-server-program-xyz")
    with pytest.raises(LoadError, match="`no-such-server-program-xyz` was not found on PATH"):
        backend.start(launch("byo-r1-e", model, runtime="command", command=missing))
    with pytest.raises(LoadError, match="does not exist or is not executable"):
        backend.start(
            launch("byo-r1-f", model, runtime="command", command=CommandSpec(command="/no/such"))
        )
    assert backend.poll() == []


def test_adopt_external_replica(settings: Settings, model: Path) -> None:
    first = SyncLocal(settings)
    r = first.start(launch("byo-r1-g", model, runtime="command", command=_byo()))
    _wait_healthy(first, r)
    first.close(stop_replicas=False)

    second = SyncLocal(settings)
    try:
        candidate = AdoptCandidate(
            replica_id=r.replica_id,
            endpoint=r.endpoint,
            revision=r.revision,
            host=r.host,
            port=r.port,
            pid=r.pid,
            started_at=r.started_at,
            log_location=r.log_location,
        )
        other = dataclasses.replace(candidate, replica_id="byo-r1-zz")
        assert second.adopt([other]) == []  # the process belongs to another replica id
        adopted = second.adopt([candidate])
        assert [(a.replica_id, a.alive) for a in adopted] == [("byo-r1-g", True)]
        assert second.logs("byo-r1-g")
        second.stop("byo-r1-g")
        assert wait_exit(second, "byo-r1-g").exit_reason is ExitReason.STOPPED
    finally:
        second.close()
        with contextlib.suppress(ProcessLookupError):  # if adoption failed, it is ours to end
            os.killpg(r.pid or 0, signal.SIGKILL)


# ---------------------------------------------------------------------- presets


def test_preset_not_installed(backend: SyncLocal, model: Path) -> None:
    env = {"PATH": "/nonexistent"}
    with pytest.raises(LoadError) as caught:
        backend.start(launch("llm-r1-a", model, runtime="vllm", env=env))
    assert str(caught.value) == (
        "vllm is not installed on this backend (no `vllm` program on PATH)"
    )
    with pytest.raises(LoadError, match="sglang is not installed on this backend"):
        backend.start(launch("llm-r1-b", model, runtime="sglang", env=env))


def test_gpu_presets_need_a_gpu(backend: SyncLocal, model: Path, fake_bin: Path) -> None:
    env = _path_env(fake_bin)
    with pytest.raises(LoadError) as caught:
        backend.start(launch("llm-r1-c", model, runtime="vllm", env=env))
    assert str(caught.value) == "vllm needs a GPU; instance type cpu-small has none"
    with pytest.raises(LoadError) as caught:  # a node without GPUs: never placed
        backend.start(launch("llm-r1-d", model, runtime="tgi", instance_type=GPU, env=env))
    assert str(caught.value) == (
        "instance type 'gpu-small' asks for 1 GPU per replica; this node has no GPU "
        "(none NVML could find)"
    )


def test_gpu_presets_need_a_visible_gpu(settings: Settings, model: Path, fake_bin: Path) -> None:
    one_gpu = GpuInventory.detect(Gpus(fake_nvml(1)))  # placed, but the env hides it
    backend = SyncLocal(settings, gpus=one_gpu)
    try:
        hidden = {**_path_env(fake_bin), "CUDA_VISIBLE_DEVICES": ""}
        with pytest.raises(LoadError, match="no NVIDIA GPU is visible on this backend"):
            backend.start(launch("llm-r1-d", model, runtime="tgi", instance_type=GPU, env=hidden))
        assert backend.room_for(launch("x", model, instance_type=GPU).size) == 1  # given back
    finally:
        backend.close()


def test_llama_cpp_preset_serves(
    backend: SyncLocal, model: Path, fake_bin: Path, settings: Settings
) -> None:
    with pytest.raises(LoadError, match=r"llama.cpp needs a \.gguf file in the model"):
        backend.start(launch("gguf-r1-a", model, runtime="llama.cpp", env=_path_env(fake_bin)))
    (model / "tiny-q4.gguf").write_bytes(b"GGUF")
    args = {"ctx_size": 2048, "-ngl": 99, "flash_attn": True, "mlock": False}
    run = launch("gguf-r1-b", model, runtime="llama.cpp", env=_path_env(fake_bin), engine_args=args)
    plan = external.plan(run, model, run_dir=settings.run_dir)
    assert plan.argv == [
        str(fake_bin / "llama-server"),
        "-m", str(model / "tiny-q4.gguf"), "--host", "127.0.0.1", "--port", str(plan.port),
        "--ctx-size", "2048", "-ngl", "99", "--flash-attn",
    ]  # fmt: skip
    assert plan.env["PORT"] == str(plan.port) and plan.env["PODIUM_MODEL_PATH"] == str(model)
    r = backend.start(run)
    _wait_healthy(backend, r)
    assert httpx.get(f"http://{r.host}:{r.port}/x", timeout=5).json()["model_file"]


def test_gpu_preset_plans(
    model: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command lines of vllm, sglang and tgi, built from the model and engine_args.
    No GPU here: its detection (a /dev/nvidia* device) is the one thing replaced."""
    monkeypatch.setattr(external, "gpu_visible", lambda env: True)
    env = _path_env(fake_bin)
    args = {"max_model_len": 4096, "enforce_eager": True, "dtype": "float16"}
    vllm = external.plan(
        launch("v-r1-a", model, runtime="vllm", instance_type=GPU, env=env, engine_args=args),
        model,
        run_dir=Path("/r"),
    )
    assert vllm.argv == [
        str(fake_bin / "vllm"), "serve", str(model), "--host", "127.0.0.1",
        "--port", str(vllm.port), "--served-model-name", "demo",
        "--max-model-len", "4096", "--enforce-eager", "--dtype", "float16",
    ]  # fmt: skip
    assert vllm.health_route == "/health"

    tgi = external.plan(
        launch("t-r1-a", model, runtime="tgi", instance_type=GPU, env=env),
        model,
        run_dir=Path("/r"),
    )
    assert tgi.argv[:7] == [
        str(fake_bin / "text-generation-launcher"), "--model-id", str(model),
        "--hostname", "127.0.0.1", "--port", str(tgi.port),
    ]  # fmt: skip
    assert tgi.argv[7:9] == ["--shard-uds-path", "/r/t-r1-a-tgi-server"]
    assert tgi.argv[9] == "--master-port" and int(tgi.argv[10]) != tgi.port

    # sglang is a module: the interpreter that runs it must be able to import it.
    python = tmp_path / "python-with-sglang"
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o755)
    sglang = external.plan(
        launch("s-r1-a", model, runtime="sglang", instance_type=GPU, env=env),
        model,
        run_dir=Path("/r"),
        python=str(python),
    )
    assert sglang.argv == [
        str(python), "-m", "sglang.launch_server", "--model-path", str(model),
        "--host", "127.0.0.1", "--port", str(sglang.port), "--served-model-name", "demo",
    ]  # fmt: skip
    with pytest.raises(LoadError, match="--port is set by Podium for vllm"):
        external.plan(
            launch("v-r1-b", model, runtime="vllm", instance_type=GPU, env=env,
                   engine_args={"port": 1}),
            model, run_dir=Path("/r"),
        )  # fmt: skip


def test_torchserve_and_triton_plans(model: Path, fake_bin: Path, settings: Settings) -> None:
    env = _path_env(fake_bin)
    ts = external.plan(
        launch("ts-r1-a", model, runtime="torchserve", env=env), model, run_dir=Path("/r")
    )
    [(config_path, text)] = ts.files.items()
    assert ts.argv[ts.argv.index("--ts-config") + 1] == str(config_path)
    assert f"inference_address=http://127.0.0.1:{ts.port}\n" in text
    assert "management_address=http://127.0.0.1:" in text and "{" not in text
    assert ts.health_route == "/ping" and ts.env["LOG_LOCATION"].startswith("/r/ts-r1-a-")

    tr = external.plan(
        launch("tr-r1-a", model, runtime="triton", env=env), model, run_dir=Path("/r")
    )
    assert tr.argv[1:7] == [
        "--model-repository", str(model), "--http-address", "127.0.0.1",
        "--http-port", str(tr.port),
    ]  # fmt: skip
    assert tr.health_route == "/v2/health/ready"
    with pytest.raises(LoadError, match="--http-port is set by Podium for triton"):
        external.plan(
            launch("tr-r1-b", model, runtime="triton", env=env, engine_args={"http_port": 1}),
            model,
            run_dir=Path("/r"),
        )


# ---------------------------------------------------------------------- pure parts


def test_registry_knows_external_frameworks() -> None:
    names = set(known_runtimes())
    assert {"onnx", "command", "vllm", "sglang", "tgi", "llama.cpp", "triton", "torchserve"} <= (
        names
    )
    with pytest.raises(LoadError, match="vllm runs as an external server"):
        get_runtime("vllm")
    with pytest.raises(Invalid):
        get_runtime("no-such-framework")


def test_command_substitution_keeps_other_braces() -> None:
    place = presets.Placeholders(model_path="/m", port=1234, endpoint="e")
    spec = CommandSpec(command="serve-{port}", args=["--cfg", '{"a": 1}', "{model_path}/w"])
    assert presets.command_args(spec, place) == ["serve-1234", "--cfg", '{"a": 1}', "/m/w"]


def test_probe_paths_follow_the_health_route() -> None:
    byo = EndpointSpec.model_validate(
        {
            "name": "byo",
            "model": "byo-model",
            "framework": "command",
            "command": {"command": "x", "health_route": "/healthz"},
            "liveness": {"path": "/alive"},
        }
    )
    ready, live = presets.probe_specs(byo)
    assert (ready.path, live.path) == ("/healthz", "/alive")  # a custom path is kept
    plain = EndpointSpec(name="iris", model="iris", framework="sklearn")
    assert presets.probe_specs(plain)[0].path == "/health/ready"
    # A replica of an older sklearn revision keeps the replica paths during a rollout.
    assert presets.probe_specs(byo, plain)[0].path == "/health/ready"
    triton = EndpointSpec(name="trt", model="trt-model", framework="triton")
    assert presets.probe_specs(triton)[1].path == "/v2/health/ready"
