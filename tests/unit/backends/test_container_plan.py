"""The plan of a container replica (`backends/containers.py`): its `run` argv, environment
and port, for the busybox-style `container` framework and for presets run from their
official images. Pure: no engine is asked."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from podium.backends.container_engine import ContainerEngine
from podium.backends.containers import home_label, is_container, plan
from podium.core.container_spec import IMAGE_RE, ContainerSpec, PullPolicy
from podium.core.errors import LoadError
from podium.core.settings import ContainerNetwork, ContainerSettings
from podium.core.spec import InstanceType
from podium.runtimes.presets import PRESETS
from tests.unit.backends.conftest import launch

SMALL = InstanceType(name="cpu-small", cpus=1.5, memory_mb=512)
GPU2 = InstanceType(name="gpu-2", cpus=8, memory_mb=32768, gpus=2)
IMAGE = "ghcr.io/acme/server:1.2"


def engine(name: str = "podman", **settings: object) -> ContainerEngine:
    return ContainerEngine(
        name=name,
        program=f"/usr/bin/{name}",
        version="4.3.1",
        settings=ContainerSettings(**settings),  # type: ignore[arg-type]
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.gguf").write_text("g", encoding="utf-8")
    return folder


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [b for a, b in itertools.pairwise(argv) if a == flag]


def test_the_argv_carries_no_environment_value(model: Path, tmp_path: Path) -> None:
    spec = ContainerSpec(
        image=IMAGE,
        env={"MODE": "fast"},
        args=["--port", "{port}", "--model", "{model_path}"],
        port=9000,
    )
    p = plan(
        launch(
            "demo-r1-abc",
            model,
            runtime="container",
            container=spec,
            instance_type=SMALL,
            env={"API_KEY": "hunter2", "PEM": "line1\nline2"},
        ),
        model,
        engine(runtime="runc", run_args=("--ulimit", "nofile=1024:1024")),
        home=tmp_path / "home",
        run_dir=tmp_path / "run",
    )
    argv = p.argv
    assert argv[:5] == ["/usr/bin/podman", "run", "--runtime", "runc", "--ulimit"]
    assert "hunter2" not in " ".join(argv) and "fast" not in " ".join(argv)
    assert "line1" not in " ".join(argv)
    assert "API_KEY=hunter2\n" in p.env_text and "MODE=fast\n" in p.env_text
    assert "PEM" not in p.env_text  # a line break: passed by name from the client's env
    assert flag_values(argv, "-e") == ["PEM", "PORT=9000", "PODIUM_MODEL_PATH=/repository"]
    assert p.client_env["PEM"] == "line1\nline2"
    assert p.client_env["PODIUM_REPLICA_ID"] == "demo-r1-abc"
    assert flag_values(argv, "--env-file") == [str(p.env_file)]
    assert flag_values(argv, "-p") == [f"127.0.0.1:{p.port}:9000"]
    assert flag_values(argv, "-v") == [f"{model}:/repository:ro"]
    assert flag_values(argv, "--name") == ["podium-demo-r1-abc"]
    assert flag_values(argv, "--cpus") == ["1.5"]
    assert flag_values(argv, "--memory") == ["512m"]
    assert flag_values(argv, "--pull") == ["never"]
    labels = dict(v.split("=", 1) for v in flag_values(argv, "--label"))
    assert labels["podium.replica"] == "demo-r1-abc"
    assert labels["podium.endpoint"] == "demo" and labels["podium.revision"] == "1"
    assert labels["podium.home"] == home_label(tmp_path / "home")
    assert labels["podium.memory-mb"] == "512"
    assert argv[-5:] == [IMAGE, "--port", "9000", "--model", "/repository"]
    assert "--entrypoint" not in argv and "-d" not in argv and "--rm" not in argv
    assert p.pull_policy is PullPolicy.IF_NOT_PRESENT


def test_two_homes_label_apart(tmp_path: Path) -> None:
    assert home_label(tmp_path / "a") != home_label(tmp_path / "b")
    assert home_label(tmp_path / "a") == home_label(tmp_path / "x" / ".." / "a")


def test_command_replaces_the_entrypoint(model: Path, tmp_path: Path) -> None:
    spec = ContainerSpec(image=IMAGE, command=["/bin/sh", "-c", "serve $PORT"], args=["x"])
    p = plan(
        launch("r", model, runtime="container", container=spec),
        model,
        engine(),
        home=tmp_path,
        run_dir=tmp_path,
    )
    i = p.argv.index("--entrypoint")
    assert p.argv[i + 1] == "/bin/sh"
    assert p.argv[-4:] == [IMAGE, "-c", "serve $PORT", "x"]


def test_host_network_uses_a_free_host_port(model: Path, tmp_path: Path) -> None:
    spec = ContainerSpec(image=IMAGE, args=["{port}"])
    p = plan(
        launch("r", model, runtime="container", container=spec),
        model,
        engine(network=ContainerNetwork.HOST),
        home=tmp_path,
        run_dir=tmp_path,
    )
    assert flag_values(p.argv, "--network") == ["host"]
    assert "-p" not in p.argv
    assert p.container_port == p.port and p.argv[-1] == str(p.port)
    assert f"PORT={p.port}" in flag_values(p.argv, "-e")


def test_gpus_as_cdi_devices_for_podman_and_gpus_for_docker(model: Path, tmp_path: Path) -> None:
    spec = ContainerSpec(image=IMAGE)
    args = launch("r", model, runtime="container", container=spec, instance_type=GPU2)
    podman = plan(args, model, engine(), home=tmp_path, run_dir=tmp_path, devices="GPU-a,GPU-b")
    assert flag_values(podman.argv, "--device") == ["nvidia.com/gpu=GPU-a", "nvidia.com/gpu=GPU-b"]
    docker = plan(args, model, engine("docker"), home=tmp_path, run_dir=tmp_path, devices="0,1")
    assert flag_values(docker.argv, "--gpus") == ['"device=0,1"']
    one = plan(args, model, engine("docker"), home=tmp_path, run_dir=tmp_path, devices="3")
    assert flag_values(one.argv, "--gpus") == ["device=3"]
    none = plan(args, model, engine(), home=tmp_path, run_dir=tmp_path, devices="")
    assert "--device" not in none.argv and "--gpus" not in none.argv


def test_presets_name_official_images() -> None:
    for name in ("vllm", "tgi", "sglang", "triton", "torchserve", "llama.cpp"):
        preset = PRESETS[name]
        assert preset.image is not None and IMAGE_RE.match(preset.image), name
        assert preset.image_command, name


def test_a_preset_runs_its_image_with_the_model_at_the_mount(model: Path, tmp_path: Path) -> None:
    spec = ContainerSpec(pull_policy=PullPolicy.ALWAYS)
    it = launch("r", model, runtime="llama.cpp", container=spec, engine_args={"ctx_size": 4096})
    assert is_container(it)
    p = plan(it, model, engine(), home=tmp_path, run_dir=tmp_path)
    assert p.image == PRESETS["llama.cpp"].image and p.pull_policy is PullPolicy.ALWAYS
    assert flag_values(p.argv, "--entrypoint") == ["/app/llama-server"]
    tail = p.argv[p.argv.index(p.image) + 1 :]
    assert tail == [
        "-m",
        "/repository/model.gguf",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--ctx-size",
        "4096",
    ]
    assert p.health_route == "/health"


def test_a_vllm_preset_image(model: Path, tmp_path: Path) -> None:
    it = launch("r", model, runtime="vllm", container=ContainerSpec(port=8000), instance_type=GPU2)
    p = plan(it, model, engine(), home=tmp_path, run_dir=tmp_path, devices="0,1")
    tail = p.argv[p.argv.index(p.image) + 1 :]
    assert tail[:6] == ["serve", "/repository", "--host", "0.0.0.0", "--port", "8000"]
    assert flag_values(p.argv, "--entrypoint") == ["vllm"]


def test_a_torchserve_preset_mounts_its_generated_config(model: Path, tmp_path: Path) -> None:
    it = launch("r", model, runtime="torchserve", container=ContainerSpec())
    p = plan(it, model, engine(), home=tmp_path, run_dir=tmp_path)
    ((host_file, text),) = p.files.items()
    assert f"{host_file}:/podium/torchserve.config:ro" in flag_values(p.argv, "-v")
    assert "inference_address=http://0.0.0.0:8080" in text
    assert "--ts-config" in p.argv and "/podium/torchserve.config" in p.argv


def test_a_gpu_preset_on_a_cpu_instance_type_cannot_run(model: Path, tmp_path: Path) -> None:
    it = launch("r", model, runtime="vllm", container=ContainerSpec())
    with pytest.raises(LoadError, match="vllm needs a GPU"):
        plan(it, model, engine(), home=tmp_path, run_dir=tmp_path)


def test_which_launches_are_containers(model: Path) -> None:
    assert is_container(
        launch("r", model, runtime="container", container=ContainerSpec(image=IMAGE))
    )
    assert not is_container(launch("r", model, runtime="vllm"))
    assert not is_container(launch("r", model, runtime="sklearn"))


def hub_snapshot(root: Path) -> Path:
    """A huggingface_hub cache repo as `snapshot_download` leaves it: the snapshot's files
    are relative links into `blobs`, one of them in a subfolder."""
    repo = root / "hub" / "models--acme--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "abc123").write_text('{"a": 1}', encoding="utf-8")
    (repo / "blobs" / "def456").write_text("tok", encoding="utf-8")
    snapshot = repo / "snapshots" / ("0" * 40)
    (snapshot / "sub").mkdir(parents=True)
    (snapshot / "config.json").symlink_to("../../blobs/abc123")
    (snapshot / "sub" / "tok.txt").symlink_to("../../../blobs/def456")
    return snapshot


def resolve_inside(mounts: list[str], path: str) -> Path:
    """Where `path` inside the container lands on the host, following links the way the
    container's kernel would: through the mounts (`HOST:INSIDE:ro`), never outside them."""
    import posixpath

    table = [(m.split(":")[1], Path(m.split(":")[0])) for m in mounts]
    for _ in range(10):
        for inside, host in sorted(table, key=lambda t: -len(t[0])):
            if path == inside or path.startswith(inside + "/"):
                on_host = host / path[len(inside) :].lstrip("/")
                break
        else:
            raise FileNotFoundError(path)
        if not on_host.is_symlink():
            return on_host
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), os.readlink(on_host)))
    raise RuntimeError("link loop")


def test_a_hub_snapshots_links_resolve_inside_the_container(tmp_path: Path) -> None:
    snapshot = hub_snapshot(tmp_path)
    spec = ContainerSpec(image=IMAGE)
    p = plan(
        launch("r", snapshot, runtime="container", container=spec),
        snapshot,
        engine(),
        home=tmp_path,
        run_dir=tmp_path,
    )
    mounts = flag_values(p.argv, "-v")
    blobs = snapshot.parent.parent / "blobs"
    assert mounts == [f"{snapshot}:/repository:ro", f"{blobs}:/blobs:ro"]
    assert resolve_inside(mounts, "/repository/config.json").read_text() == '{"a": 1}'
    assert resolve_inside(mounts, "/repository/sub/tok.txt").read_text() == "tok"
    # A deeper mount point: the blobs go where the links lead from it.
    deep = plan(
        launch(
            "r",
            snapshot,
            runtime="container",
            container=spec.model_copy(update={"model_mount": "/models/tiny"}),
        ),
        snapshot,
        engine(),
        home=tmp_path,
        run_dir=tmp_path,
    )
    mounts = flag_values(deep.argv, "-v")
    assert mounts[1] == f"{blobs}:/blobs:ro"
    assert resolve_inside(mounts, "/models/tiny/config.json").read_text() == '{"a": 1}'
    # A plain folder of files gets no second mount.
    plain = tmp_path / "plain"
    plain.mkdir()
    other = plan(
        launch("r", plain, runtime="container", container=spec),
        plain,
        engine(),
        home=tmp_path,
        run_dir=tmp_path,
    )
    assert flag_values(other.argv, "-v") == [f"{plain}:/repository:ro"]


def test_presets_on_the_hosts_network_bind_loopback(model: Path, tmp_path: Path) -> None:
    it = launch("r", model, runtime="torchserve", container=ContainerSpec())
    p = plan(it, model, engine(network=ContainerNetwork.HOST), home=tmp_path, run_dir=tmp_path)
    assert "0.0.0.0" not in " ".join(p.argv)
    ((_, text),) = p.files.items()
    assert f"inference_address=http://127.0.0.1:{p.port}" in text
    assert "0.0.0.0" not in text
    tgi = launch("r", model, runtime="tgi", container=ContainerSpec(), instance_type=GPU2)
    t = plan(tgi, model, engine(network=ContainerNetwork.HOST), home=tmp_path, run_dir=tmp_path)
    assert flag_values(t.argv, "--hostname") == ["127.0.0.1"]
    own = plan(tgi, model, engine(), home=tmp_path, run_dir=tmp_path)
    assert flag_values(own.argv, "--hostname") == ["0.0.0.0"]  # its own network namespace


def test_a_preset_from_its_image_gets_the_presets_env(model: Path, tmp_path: Path) -> None:
    it = launch("r", model, runtime="torchserve", container=ContainerSpec(), env={"X": "1"})
    p = plan(it, model, engine(), home=tmp_path, run_dir=tmp_path)
    assert "LOG_LOCATION=/tmp/podium-torchserve-logs\n" in p.env_text
    assert "METRICS_LOCATION=/tmp/podium-torchserve-logs\n" in p.env_text
    assert "X=1\n" in p.env_text
    # The endpoint's env wins over the preset's default, as for a process replica.
    mine = launch(
        "r", model, runtime="torchserve", container=ContainerSpec(), env={"LOG_LOCATION": "/x"}
    )
    q = plan(mine, model, engine(), home=tmp_path, run_dir=tmp_path)
    assert "LOG_LOCATION=/x\n" in q.env_text and "LOG_LOCATION=/tmp" not in q.env_text


def test_the_run_names_the_qualified_image(model: Path, tmp_path: Path) -> None:
    for short, full in (
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("vllm/vllm-openai", "docker.io/vllm/vllm-openai"),
        ("localhost/podium-test/busybox:2", "localhost/podium-test/busybox:2"),
        ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
    ):
        spec = ContainerSpec(image=short)
        p = plan(
            launch("r", model, runtime="container", container=spec),
            model,
            engine(),
            home=tmp_path,
            run_dir=tmp_path,
        )
        assert p.image == full and p.argv[-1] == full, short


def test_a_model_mount_where_the_hub_links_lead_is_a_load_error(tmp_path: Path) -> None:
    snapshot = hub_snapshot(tmp_path)
    spec = ContainerSpec(image=IMAGE, model_mount="/blobs")
    with pytest.raises(LoadError, match="overlaps its model_mount /blobs"):
        plan(
            launch("r", snapshot, runtime="container", container=spec),
            snapshot,
            engine(),
            home=tmp_path,
            run_dir=tmp_path,
        )
