"""The command line and environment of a `python -m podium.replica` process.

The environment is the server's without its secrets (`replica_env.inherited_env`), the
endpoint's `env` and secrets laid over it, then what the backend sets itself, last so that
an endpoint cannot override it: the thread counts, the memory limit, the instance type and
`CUDA_VISIBLE_DEVICES` (the GPUs the backend gave the replica, "" for none).
"""

from __future__ import annotations

import itertools
from pathlib import Path

from podium.backends.base import ReplicaLaunch
from podium.backends.replica_env import ENV_VISIBLE_DEVICES, inherited_env
from podium.replica import memory

# The replica sets its kernel memory limit from it; read back from the process when adopting.
ENV_MEMORY_LIMIT = memory.ENV_MEMORY_LIMIT
ENV_INSTANCE_TYPE = "PODIUM_INSTANCE_TYPE"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def replica_command(
    launch: ReplicaLaunch,
    model_path: Path,
    fd: int,
    status_path: Path,
    python: str,
    visible_devices: str = "",
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the replica (`--fd` alone: the replica's `--port` and
    `--fd` are mutually exclusive, and the socket already says which port it is).
    `model_path`: the model's folder on this node (`model_cache.ModelCache.path`);
    `visible_devices`: its `CUDA_VISIBLE_DEVICES` (`gpu_inventory.visible`)."""
    threads = str(max(1, int(launch.instance_type.cpus)))
    options = {
        "--replica-id": launch.replica_id,
        "--endpoint": launch.endpoint,
        "--revision": str(launch.revision),
        "--runtime": launch.runtime,
        "--model-path": str(model_path),
        "--fd": str(fd),
        "--max-concurrency": str(launch.max_concurrency),
        "--max-queue": str(launch.max_queue),
        "--threads": threads,
        "--status-file": str(status_path),
    }
    argv = [python, "-m", "podium.replica", *itertools.chain(*options.items())]
    if launch.task:
        argv += ["--task", launch.task]
    if launch.model_version is not None:
        argv += ["--model-version", launch.model_version]
    if launch.trust_pickle:
        argv.append("--trust-pickle")
    for key, value in launch.engine_args.items():  # the runtime's options (device, dtype)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        argv += ["--engine-arg", f"{key}={text}"]
    if launch.batching is not None:
        argv += [
            "--max-batch-size",
            str(launch.batching.max_batch_size),
            "--max-wait-ms",
            str(launch.batching.max_wait_ms),
        ]
    env = {**inherited_env(), **launch.env}
    env.update(dict.fromkeys(THREAD_VARS, threads))
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # a fatal signal prints a traceback, even during imports
    env[ENV_MEMORY_LIMIT] = str(launch.instance_type.memory_mb)
    env[ENV_INSTANCE_TYPE] = launch.instance_type.name
    env[ENV_VISIBLE_DEVICES] = visible_devices
    return argv, env
