"""External servers as replicas: framework `command` (bring your own server) and presets.

For a launch whose framework is external (`runtimes.presets.is_external`), `plan` builds
the argv, environment and port of the server, after checking what would make it fail on
every try: the program is missing, a GPU preset has no GPU, llama.cpp finds no `.gguf`.
Those raise `LoadError`, which the controller turns into a failed endpoint at once (no
restarts). `spawn` starts the plan; `LocalBackend` then watches the process like any
replica (logs, memory limit, stop, kill, adoption).

The server binds its port itself (unlike `podium.replica`, it cannot be handed a socket),
so the port is the spec's fixed `port` or a free loopback port picked here just before
the start. The process environment is the server's without its secrets
(`replica_env.inherited_env`: no `PODIUM_*` settings or tokens, no `HF_TOKEN`), the endpoint's
`env` and secrets, `PORT`, `PODIUM_MODEL_PATH`, and `PODIUM_REPLICA_ID` (which identifies
it on adoption).
"""

from __future__ import annotations

import errno
import importlib.util
import os
import posixpath
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from podium.backends import processes
from podium.backends.base import ReplicaLaunch
from podium.backends.replica_env import inherited_env
from podium.backends.resources import node_capacity
from podium.core.errors import LoadError, Unavailable
from podium.runtimes import presets
from podium.runtimes.presets import Placeholders, Preset

HOST = presets.HOST
ENV_REPLICA_ID = "PODIUM_REPLICA_ID"
ENV_PORT = "PORT"
ENV_MODEL_PATH = "PODIUM_MODEL_PATH"
_NO_GPU_VALUES = ("", "-1", "none", "void", "NoDevFiles")
_MODULE_CHECK = (
    "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
)


@dataclass(frozen=True, slots=True)
class ExternalPlan:
    """What to run for one external replica."""

    argv: list[str]
    env: dict[str, str]
    port: int
    health_route: str
    files: dict[Path, str] = field(default_factory=dict)  # written just before the start


def is_external(launch: ReplicaLaunch) -> bool:
    return presets.is_external(launch.runtime)


def plan(
    launch: ReplicaLaunch,
    model_path: Path,
    *,
    run_dir: Path,
    python: str = sys.executable,
    extra_env: Mapping[str, str] | None = None,
) -> ExternalPlan:
    """The server to start for `launch`, whose model is at `model_path` on this node;
    LoadError when it cannot run on this backend."""
    env = {**inherited_env(), **launch.env}
    if launch.runtime == presets.COMMAND:
        return _command_plan(launch, model_path, env, extra_env or {})
    preset = presets.get_preset(launch.runtime)
    if preset is None:
        raise LoadError(f"framework {launch.runtime} is not an external server")
    return _preset_plan(launch, model_path, preset, env, run_dir, python, extra_env or {})


def _command_plan(
    launch: ReplicaLaunch, model_path: Path, env: dict[str, str], extra_env: Mapping[str, str]
) -> ExternalPlan:
    spec = launch.command
    if spec is None:
        raise LoadError("framework command needs a `command` block (command, args, port, …)")
    port = spec.port or free_port()
    place = Placeholders(model_path=str(model_path), port=port, endpoint=launch.endpoint)
    argv = presets.command_args(spec, place)
    argv[0] = resolve_program(argv[0], env)
    env = _server_env(env, launch, model_path, port, extra_env)
    return ExternalPlan(argv=argv, env=env, port=port, health_route=spec.health_route)


def _preset_plan(
    launch: ReplicaLaunch,
    model_path: Path,
    preset: Preset,
    env: dict[str, str],
    run_dir: Path,
    python: str,
    extra_env: Mapping[str, str],
) -> ExternalPlan:
    program = _installed(preset, env, python)
    if preset.needs_gpu:
        _require_gpu(preset, launch, env)
    port = free_port()
    config_file = run_dir / f"{launch.replica_id}-{preset.name}.config"
    parts = preset_parts(
        preset,
        launch,
        model_path,
        model_in=str(model_path),
        host=HOST,
        port=port,
        config_file=str(config_file),
        scratch=str(run_dir / f"{launch.replica_id}-"),
        extra_ports=tuple(free_port() for _ in range(preset.extra_ports)),
    )
    files = {config_file: parts.config} if parts.config is not None else {}
    for key, value in parts.env.items():
        env.setdefault(key, value)
    env = _server_env(env, launch, model_path, port, extra_env)
    return ExternalPlan(
        argv=[program, *parts.args],
        env=env,
        port=port,
        health_route=preset.health_route,
        files=files,
    )


@dataclass(frozen=True, slots=True)
class PresetParts:
    """A preset's arguments, config file text and environment defaults for one replica,
    the same whether it runs as a process (`plan`) or from its image (`containers.plan`)."""

    args: list[str]
    config: str | None  # the text of its config file (None: the preset has none)
    env: dict[str, str]  # `Preset.env`, its `{names}` replaced: defaults under the endpoint's


def preset_parts(
    preset: Preset,
    launch: ReplicaLaunch,
    model_path: Path,
    *,
    model_in: str,
    host: str,
    port: int,
    config_file: str,
    scratch: str,
    extra_ports: tuple[int, ...],
) -> PresetParts:
    """`preset`'s parts for `launch`, whose model is at `model_path` on this node and at
    `model_in` where the server runs (the same path for a process, the mount for a
    container); `host`, `port`, `config_file`, `scratch`, `extra_ports` as the server sees
    them. `LoadError` when the model cannot be read or lacks the file the preset needs."""
    folder_in = model_in if model_path.is_dir() else posixpath.dirname(model_in)
    model_file = presets.pick_model_file(preset, model_file_names(model_path))
    place = Placeholders(
        model_path=model_in,
        port=port,
        endpoint=launch.endpoint,
        host=host,
        model_file=f"{folder_in}/{model_file}" if model_file else "",
        config_file=config_file if preset.config else "",
        scratch=scratch,
        extra_ports=extra_ports,
    )
    values = place.values()
    return PresetParts(
        args=presets.preset_args(preset, place, launch.engine_args),
        config=presets.config_text(preset, place),
        env={key: presets.substitute(value, values) for key, value in preset.env},
    )


def _server_env(
    env: dict[str, str],
    launch: ReplicaLaunch,
    model_path: Path,
    port: int,
    extra_env: Mapping[str, str],
) -> dict[str, str]:
    env.update(extra_env)
    env[ENV_PORT] = str(port)
    env[ENV_MODEL_PATH] = str(model_path)
    env[ENV_REPLICA_ID] = launch.replica_id
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# ---------------------------------------------------------------------- checks


def _installed(preset: Preset, env: Mapping[str, str], python: str) -> str:
    """The program that runs the preset (absolute path); LoadError when not installed."""
    if preset.package is not None:
        if not module_importable(preset.package, python):
            raise LoadError(
                f"{preset.name} is not installed on this backend (python module "
                f"`{preset.package}` is not importable by {python})"
            )
        return python
    found = find_program(preset.program, env, python)
    if found is None:
        raise LoadError(
            f"{preset.name} is not installed on this backend "
            f"(no `{preset.program}` program on PATH)"
        )
    return found


def resolve_program(program: str, env: Mapping[str, str]) -> str:
    """`program` as an executable path: a path is checked, a bare name looked up on PATH."""
    if os.sep in program:
        if os.path.isfile(program) and os.access(program, os.X_OK):
            return program
        raise LoadError(f"command {program} does not exist or is not executable on this backend")
    found = find_program(program, env)
    if found is None:
        raise LoadError(f"command `{program}` was not found on PATH on this backend")
    return found


def find_program(name: str, env: Mapping[str, str], python: str | None = None) -> str | None:
    """`name` on the server's PATH (and next to `python`, e.g. a virtualenv's bin/)."""
    path = env.get("PATH", os.defpath)
    if python:
        path = os.pathsep.join([path, os.path.dirname(python)])
    return shutil.which(name, path=path)


def module_importable(package: str, python: str) -> bool:
    """True when `python` can import `package` (checked in-process for our interpreter)."""
    if python == sys.executable:
        try:
            return importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            return False
    try:
        done = subprocess.run(
            [python, "-c", _MODULE_CHECK, package],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _require_gpu(preset: Preset, launch: ReplicaLaunch, env: Mapping[str, str]) -> None:
    it = launch.instance_type
    if it.gpus == 0:
        raise LoadError(f"{preset.name} needs a GPU; instance type {it.name} has none")
    if not gpu_visible(env):
        raise LoadError(f"{preset.name} needs a GPU; no NVIDIA GPU is visible on this backend")


def gpu_visible(env: Mapping[str, str]) -> bool:
    """True when this node has an NVIDIA GPU (`resources.node_capacity`, the count the size
    check uses) and the environment does not hide it."""
    for key in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if key in env and env[key].strip() in _NO_GPU_VALUES:
            return False
    return node_capacity().gpus > 0


def model_file_names(path: Path) -> list[str]:
    """The names of the model's files (its own name for a single file); `LoadError` when
    its folder cannot be read."""
    if path.is_file():
        return [path.name]
    try:
        return [p.name for p in path.iterdir() if p.is_file()]
    except OSError as e:
        raise LoadError(f"model path {path} cannot be read: {e}") from e


def free_port(host: str = HOST) -> int:
    """A loopback port that is free right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- start / adopt


def spawn(plan: ExternalPlan, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the server in its own session, stdout+stderr appended to `log_path`.

    A program that cannot be executed at all raises LoadError; other OS errors (out of
    processes, memory) raise Unavailable, since they may pass.
    """
    try:
        for path, text in plan.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        with log_path.open("ab") as log:
            return subprocess.Popen(
                plan.argv,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=plan.env,
                close_fds=True,
            )
    except OSError as e:
        if isinstance(e, FileNotFoundError | PermissionError) or e.errno == errno.ENOEXEC:
            raise LoadError(f"could not run {plan.argv[0]}: {e.strerror or e}") from e
        raise Unavailable(f"could not start {plan.argv[0]}: {e}", field="replica") from e


def is_external_replica(proc: psutil.Process, replica_id: str) -> bool:
    """True if `proc` is a live external server started for `replica_id` (guards pid reuse)."""
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
    except (psutil.Error, OSError):
        return False
    return processes.process_env(proc, ENV_REPLICA_ID) == replica_id
