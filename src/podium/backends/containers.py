"""The plan of one container replica: what `ENGINE run` gets (pure, apart from a free port).

A launch runs as a container when its framework is `container`, or when it is a server
preset (vllm, tgi, …) with a `container` block (`is_container`); the image is the block's
`image`, else the preset's official one (`runtimes.presets.Preset.image`).

    ENGINE run [operator's flags] --name podium-<replica> --label podium.replica=<id> …
        --pull never --sig-proxy=true --env-file <private file> -e PORT=<port inside>
        -e PODIUM_MODEL_PATH=<mount> -v <model folder>:<mount>:ro
        [-v <hub repo>/blobs:<where the snapshot's links lead>:ro]   (an hf:// model)
        -p 127.0.0.1:<free host port>:<port inside>   (or --network host)
        --cpus <instance type's> --memory <MiB>m --memory-swap <MiB>m
        [--device nvidia.com/gpu=<id> … | --gpus device=<ids>]
        [--entrypoint <command[0]>] IMAGE [command[1:]] [args]

IMAGE is `core.container_spec.qualified(image)`: its registry spelled out, as the pull and
`image inspect` name it, so podman never resolves a short name its own way.

- Attached (no `-d`) and not `--rm`: the engine's client lives as long as the container,
  its output is the replica's log, its exit code the container's, and the exited container
  stays for `inspect` (exit code, OOMKilled) until the backend removes it.
- Labels: `podium.replica`, `podium.endpoint`, `podium.revision`, and `podium.home` (a hash
  of the server's home folder: two servers on one node never adopt or remove each other's
  containers); also `podium.instance-type`, `podium.memory-mb`, `podium.devices`, which a
  later server reads back when it adopts the container alone.
- Environment values never appear on the command line (`ps` shows it): the endpoint's
  `env`, its secrets and the block's `env` go to an env file (0600, under the run dir,
  removed once the container runs); a value with a line break, which an env file cannot
  carry, is passed by name (`-e NAME`) from the client's own environment instead.
- Network: `published` (default) gives the container its own network and publishes its
  port on 127.0.0.1 only; `host` shares the host's network, and the server listens on a
  free host port (`PORT`), on 127.0.0.1 for a preset (a custom image must bind it so).
- An hf:// model's folder is a hub cache snapshot of relative links into the repo's
  `blobs`, mounted too where the links resolve (`hub_blob_mounts`).
- `{port}` and `{model_path}` in `command` and `args` become the port inside and the model
  mount. A preset's arguments are its base command with host 0.0.0.0 (inside; 127.0.0.1 on
  the host's network), the model at the mount and the port inside, then its
  `engine_args`; the block's `args`, when given, replace them. Its environment defaults
  (`Preset.env`) go under the endpoint's (`external.preset_parts`, shared with process
  replicas).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from podium.backends.base import ReplicaLaunch
from podium.backends.container_engine import ContainerEngine
from podium.backends.external import (
    ENV_MODEL_PATH,
    ENV_PORT,
    ENV_REPLICA_ID,
    free_port,
    preset_parts,
)
from podium.backends.launch import ENV_INSTANCE_TYPE, ENV_MEMORY_LIMIT
from podium.backends.replica_env import ENV_VISIBLE_DEVICES, inherited_env
from podium.core.container_spec import ContainerSpec, PullPolicy, qualified
from podium.core.env_spec import env_values
from podium.core.errors import LoadError
from podium.core.settings import ContainerNetwork
from podium.runtimes import presets

NAME_PREFIX = "podium-"
LABEL_REPLICA = "podium.replica"
LABEL_ENDPOINT = "podium.endpoint"
LABEL_REVISION = "podium.revision"
LABEL_HOME = "podium.home"
LABEL_INSTANCE_TYPE = "podium.instance-type"
LABEL_MEMORY_MB = "podium.memory-mb"
LABEL_DEVICES = "podium.devices"
# In the engine client's environment: the container it runs (adoption reads it back).
ENV_CONTAINER = "PODIUM_CONTAINER"
INSIDE_HOST = "0.0.0.0"  # inside the container's own network namespace
CONFIG_DIR = "/podium"  # where a preset's generated config file is mounted
SCRATCH = "/tmp/podium-"  # a preset's scratch prefix, inside the container


@dataclass(frozen=True, slots=True)
class ContainerPlan:
    """What to run for one container replica (module docstring)."""

    name: str  # the container's name
    image: str
    pull_policy: PullPolicy
    argv: list[str]  # the engine's full command line: no environment value on it
    client_env: dict[str, str] = field(repr=False)  # the engine client's environment
    env_file: Path  # written (0600) just before the start, removed once the container runs
    env_text: str = field(repr=False)
    port: int  # where the replica answers on this host (127.0.0.1)
    container_port: int  # where the server listens inside
    health_route: str = "/health"
    files: dict[Path, str] = field(default_factory=dict)  # written just before the start


def is_container(launch: ReplicaLaunch) -> bool:
    """True when `launch` runs as a container (module docstring)."""
    if launch.runtime == presets.CONTAINER:
        return True
    return launch.container is not None and presets.get_preset(launch.runtime) is not None


def container_name(replica_id: str) -> str:
    return NAME_PREFIX + replica_id


def home_label(home: Path) -> str:
    """The `podium.home` label of a server whose home folder is `home`."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]


def plan(
    launch: ReplicaLaunch,
    model_path: Path,
    engine: ContainerEngine,
    *,
    home: Path,
    run_dir: Path,
    devices: str = "",
) -> ContainerPlan:
    """The container to run for `launch`, whose model is at `model_path` on this node;
    `devices`: its GPUs' `CUDA_VISIBLE_DEVICES` value. `LoadError` when it cannot run."""
    spec = launch.container or ContainerSpec()
    preset = presets.get_preset(launch.runtime)
    named = spec.image or (preset.image if preset is not None else None)
    if named is None:
        raise LoadError(
            f"framework {launch.runtime} has no image: set `container.image`",
            field="container.image",
        )
    image = qualified(named)  # what the pull and inspect named too (never a short name)
    if preset is not None and preset.needs_gpu and launch.instance_type.gpus == 0:
        raise LoadError(
            f"{preset.name} needs a GPU; instance type {launch.instance_type.name} has none",
            field="instance_type",
        )
    settings = engine.settings
    host_network = settings.network is ContainerNetwork.HOST
    host_port = free_port()
    inside = host_port if host_network else spec.port
    folder = model_path if model_path.is_dir() else model_path.parent
    mount = spec.model_mount
    model_in = mount if model_path.is_dir() else f"{mount}/{model_path.name}"
    name = container_name(launch.replica_id)
    files: dict[Path, str] = {}
    mounts = [f"{folder}:{mount}:ro", *hub_blob_mounts(folder, mount)]

    values = {"port": str(inside), "model_path": model_in}
    command = [presets.substitute(c, values) for c in spec.command or ()]
    args = [presets.substitute(a, values) for a in spec.args]
    health = spec.health_route
    preset_env: dict[str, str] = {}
    if preset is not None:
        command = command or list(preset.image_command)
        health = preset.health_route
        config_in = f"{CONFIG_DIR}/{preset.name}.config"
        parts = preset_parts(
            preset,
            launch,
            model_path,
            model_in=model_in,
            # On the host's network 0.0.0.0 would be every interface of the host.
            host=presets.HOST if host_network else INSIDE_HOST,
            port=inside,
            config_file=config_in,
            scratch=SCRATCH,
            # Its own network: any port beside the main one; the host's: free ones.
            extra_ports=tuple(
                free_port() if host_network else inside + i
                for i in range(1, preset.extra_ports + 1)
            ),
        )
        preset_env = parts.env
        if not spec.args:
            args = parts.args
            if parts.config is not None:
                host_file = run_dir / f"{launch.replica_id}-{preset.name}.config"
                files[host_file] = parts.config
                mounts.append(f"{host_file}:{config_in}:ro")

    env = {**preset_env, **launch.env, **env_values(spec.env)}
    by_name = {k: v for k, v in env.items() if "\n" in v or "\r" in v}
    env_file = run_dir / f"{launch.replica_id}.container.env"
    env_text = env_file_text({k: v for k, v in env.items() if k not in by_name})

    argv = [engine.program, "run", *engine.run_flags(), "--name", name]
    labels = {
        LABEL_REPLICA: launch.replica_id,
        LABEL_ENDPOINT: launch.endpoint,
        LABEL_REVISION: str(launch.revision),
        LABEL_HOME: home_label(home),
        LABEL_INSTANCE_TYPE: launch.instance_type.name,
        LABEL_MEMORY_MB: str(launch.instance_type.memory_mb),
        LABEL_DEVICES: devices,
    }
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    argv += ["--pull", "never", "--sig-proxy=true", "--env-file", str(env_file)]
    for key in by_name:
        argv += ["-e", key]  # its value comes from the client's environment
    argv += ["-e", f"{ENV_PORT}={inside}", "-e", f"{ENV_MODEL_PATH}={model_in}"]
    for m in mounts:
        argv += ["-v", m]
    if host_network:
        argv += ["--network", "host"]
    else:
        argv += ["-p", f"{presets.HOST}:{host_port}:{inside}"]
    argv += limit_flags(launch.instance_type.cpus, launch.instance_type.memory_mb)
    argv += gpu_flags(engine.name, devices)
    if command:
        argv += ["--entrypoint", command[0]]
    argv += [image, *command[1:], *args]

    client_env = {**inherited_env(), **by_name}
    client_env[ENV_REPLICA_ID] = launch.replica_id
    client_env[ENV_CONTAINER] = name
    # Read back from the client on adoption: its GPUs, memory limit and instance type.
    client_env[ENV_VISIBLE_DEVICES] = devices
    client_env[ENV_MEMORY_LIMIT] = str(launch.instance_type.memory_mb)
    client_env[ENV_INSTANCE_TYPE] = launch.instance_type.name
    return ContainerPlan(
        name=name,
        image=image,
        pull_policy=spec.pull_policy,
        argv=argv,
        client_env=client_env,
        env_file=env_file,
        env_text=env_text,
        port=host_port,
        container_port=inside,
        health_route=health,
        files=files,
    )


def limit_flags(cpus: float, memory_mb: int) -> list[str]:
    """The instance type's CPU and memory limits (no swap beyond the memory)."""
    return [
        "--cpus",
        f"{cpus:g}",
        "--memory",
        f"{memory_mb}m",
        "--memory-swap",
        f"{memory_mb}m",
    ]


def gpu_flags(engine: str, devices: str) -> list[str]:
    """The replica's GPUs: CDI devices for podman (`nvidia.com/gpu=ID`, the NVIDIA
    container toolkit's CDI spec), `--gpus device=IDS` for docker; none for "" ."""
    ids = [d for d in devices.split(",") if d]
    if not ids:
        return []
    if engine == "docker":
        value = f"device={ids[0]}" if len(ids) == 1 else '"device=' + ",".join(ids) + '"'
        return ["--gpus", value]
    out: list[str] = []
    for d in ids:
        out += ["--device", f"nvidia.com/gpu={d}"]
    return out


def hub_blob_mounts(folder: Path, mount: str) -> list[str]:
    """The read-only mount of a Hugging Face hub cache repo's `blobs` folder when `folder`
    (mounted at `mount`) is, or is under, one of its `snapshots/<sha>` folders: the
    snapshot's files are relative links (`../../blobs/<hash>`), which would dangle inside
    the container with the snapshot alone mounted. The blobs go where the links resolve,
    `mount`'s depth in the snapshot taken into account; [] for any other folder."""
    for depth, snapshot in enumerate((folder, *folder.parents)):
        if depth > 8:  # a hub cache nests no deeper
            break
        repo = snapshot.parent.parent
        if snapshot.parent.name == "snapshots" and (repo / "blobs").is_dir():
            root_in = posixpath.join(mount, *([".."] * depth))
            blobs_in = posixpath.normpath(posixpath.join(root_in, "..", "..", "blobs"))
            if _overlap(blobs_in, mount):
                raise LoadError(
                    f"an hf:// model's files link to {blobs_in} inside the container, which "
                    f"overlaps its model_mount {mount}: choose another model_mount",
                    field="container.model_mount",
                )
            return [f"{repo / 'blobs'}:{blobs_in}:ro"]
    return []


def _overlap(a: str, b: str) -> bool:
    """Whether one of two container paths is the other or under it."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def env_file_text(env: Mapping[str, str]) -> str:
    """`NAME=value` lines, as `--env-file` reads them."""
    return "".join(f"{k}={v}\n" for k, v in env.items())
