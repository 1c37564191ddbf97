"""Adoption by the local backend: is a replica a previous server started still running, and
is that process really it? Identified by its command line (`podium.replica --replica-id`),
its environment (an external server's `PODIUM_REPLICA_ID`) or, for a fork of a zygote, the
record written at fork time (pid and process start time). Its memory limit and instance type
are read back from the process (or the fork record), so the limits still hold."""

from __future__ import annotations

from pathlib import Path

import psutil

from podium.backends import external, processes, zygote_pool
from podium.backends.base import AdoptCandidate
from podium.backends.launch import ENV_INSTANCE_TYPE, ENV_MEMORY_LIMIT
from podium.backends.managed import ManagedReplica


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
    if not (
        processes.is_replica_of(proc, c.replica_id)
        or external.is_external_replica(proc, c.replica_id)
        or forked is not None
    ):
        return None
    env = forked or {}  # a fork's environment is its zygote's: read its record
    limit = env.get(ENV_MEMORY_LIMIT) or processes.process_env(proc, ENV_MEMORY_LIMIT)
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
    )
