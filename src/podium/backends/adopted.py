"""Adoption by the local backend: is a replica a previous server started still running, and
is that process really it? Identified by its command line (`podium.replica --replica-id`),
its environment (an external server's `PODIUM_REPLICA_ID`) or, for a fork of a zygote, the
record written at fork time (pid and process start time). Its memory limit and instance type
are read back from the process (or the fork record), so the limits still hold; so is its
`CUDA_VISIBLE_DEVICES`, so that the GPUs it holds are reserved again (`gpu_inventory`).

A container replica whose engine client still runs is adopted by that client (its
environment names the container, `PODIUM_CONTAINER`); one whose client is gone but whose
container still runs is adopted by the container's main process (`container_adoptable`),
its limits and GPUs read from the container's labels."""

from __future__ import annotations

from pathlib import Path

import psutil

from podium.backends import external, processes, zygote_pool
from podium.backends.base import AdoptCandidate
from podium.backends.container_runtime import ContainerState
from podium.backends.containers import (
    ENV_CONTAINER,
    LABEL_DEVICES,
    LABEL_HOME,
    LABEL_INSTANCE_TYPE,
    LABEL_MEMORY_MB,
    LABEL_REPLICA,
    container_name,
)
from podium.backends.launch import ENV_INSTANCE_TYPE, ENV_MEMORY_LIMIT
from podium.backends.managed import ManagedReplica
from podium.backends.replica_env import ENV_VISIBLE_DEVICES


def adoptable(c: AdoptCandidate, status_path: Path, log_path: Path) -> ManagedReplica | None:
    """The replica `c` as a process this backend can watch again; None when it no longer
    runs or the process with its pid is not it."""
    if c.pid is None:
        return None
    try:
        proc = psutil.Process(c.pid)
    except psutil.Error:
        return None
    forked = zygote_pool.adoptable_fork(proc, status_path)
    external_server = external.is_external_replica(proc, c.replica_id)
    if not (processes.is_replica_of(proc, c.replica_id) or external_server or forked is not None):
        return None
    env = forked or {}  # a fork's environment is its zygote's: read its record
    limit = env.get(ENV_MEMORY_LIMIT) or processes.process_env(proc, ENV_MEMORY_LIMIT)
    devices = (
        env.get(ENV_VISIBLE_DEVICES) if forked else processes.process_env(proc, ENV_VISIBLE_DEVICES)
    )
    return ManagedReplica(
        replica_id=c.replica_id,
        endpoint=c.endpoint,
        revision=c.revision,
        port=c.port,
        pid=c.pid,
        started_at=c.started_at,
        log_path=log_path,
        status_path=status_path,
        proc=proc,
        memory_mb=int(limit) if limit and limit.isdigit() else None,
        instance_type=env.get(ENV_INSTANCE_TYPE)
        or processes.process_env(proc, ENV_INSTANCE_TYPE)
        or "",
        start_mode="fork" if forked else "spawn",
        visible_devices=devices,
        container=processes.process_env(proc, ENV_CONTAINER) if external_server else None,
    )


def container_adoptable(
    c: AdoptCandidate,
    state: ContainerState | None,
    home: str,
    status_path: Path,
    log_path: Path,
) -> ManagedReplica | None:
    """The container of replica `c`, running without its client, as a replica to watch by
    its main process; None unless it runs and its labels name `c` and this server's
    `home`."""
    if state is None or not state.running or state.pid <= 0:
        return None
    labels = state.labels
    if labels.get(LABEL_REPLICA) != c.replica_id or labels.get(LABEL_HOME) != home:
        return None
    try:
        proc = psutil.Process(state.pid)
    except psutil.Error:
        return None
    memory = labels.get(LABEL_MEMORY_MB, "")
    return ManagedReplica(
        replica_id=c.replica_id,
        endpoint=c.endpoint,
        revision=c.revision,
        port=c.port,
        pid=state.pid,
        started_at=c.started_at,
        log_path=log_path,
        status_path=status_path,
        proc=proc,
        memory_mb=int(memory) if memory.isdigit() else None,
        instance_type=labels.get(LABEL_INSTANCE_TYPE, ""),
        visible_devices=labels.get(LABEL_DEVICES),
        container=container_name(c.replica_id),
        container_pid=state.pid,
        has_client=False,
    )
