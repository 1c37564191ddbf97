"""The command line and environment of a `python -m podium.replica` process.

A replica runs user code, so it does not inherit the server's secrets: `inherited_env`
is the server's environment without Podium's own variables (`PODIUM_*`: the database URL,
tokens, paths; except the few a replica reads itself) and without the server's Hugging Face
token (an endpoint that needs one names a secret in `env_from_secrets`). The endpoint's
`env` and secrets are laid over it, then what the backend sets itself.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path

from podium.backends.base import ReplicaLaunch
from podium.replica import memory

# The replica sets its kernel memory limit from it; read back from the process when adopting.
ENV_MEMORY_LIMIT = memory.ENV_MEMORY_LIMIT
ENV_INSTANCE_TYPE = "PODIUM_INSTANCE_TYPE"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# The server's variables a replica does not inherit (see the module doc).
PODIUM_VAR_PREFIX = "PODIUM_"
REPLICA_PODIUM_VARS = frozenset({memory.ENV_MEMORY_LIMIT, memory.ENV_MEMORY_RLIMIT})
WITHHELD_VARS = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})


def inherited_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a replica inherits of the server's environment (`os.environ` by default)."""
    source = os.environ if environ is None else environ
    return {
        k: v
        for k, v in source.items()
        if k not in WITHHELD_VARS
        and (not k.startswith(PODIUM_VAR_PREFIX) or k in REPLICA_PODIUM_VARS)
    }


def replica_command(
    launch: ReplicaLaunch, model_path: Path, fd: int, status_path: Path, python: str
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the replica (`--fd` alone: the replica's `--port` and
    `--fd` are mutually exclusive, and the socket already says which port it is).
    `model_path`: the model's folder on this node (`model_cache.ModelCache.path`)."""
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
    return argv, env
