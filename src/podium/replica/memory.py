"""The replica's memory limit, enforced by the kernel, and what running out of it means.

The backend passes the instance type's memory in `PODIUM_MEMORY_LIMIT_MB`. The replica
sets `RLIMIT_DATA` (soft and hard: user code cannot raise it) to that many MiB as its
first step, in a spawned process and in a zygote's forked child alike. Since Linux 4.7
`RLIMIT_DATA` counts private writable mappings (heap, anonymous mmap), so an allocation
beyond the limit fails at once with `MemoryError` instead of growing the process until
the backend's RSS poll (still running, as a fallback for what the rlimit does not count:
child processes, shared memory) kills it. Virtual reservations that are not writable
(PROT_NONE arenas, torch/onnxruntime address-space reservations) do not count, which is
why this is `RLIMIT_DATA` and not `RLIMIT_AS`.

A request whose model runs out answers 507 (problem+json, "the replica ran out of
memory"); the replica then writes `{"state": "out_of_memory"}` to its status file and
stops gracefully (in-flight requests finish), so the backend reports the exit as `oom`
and the controller starts a fresh replica: memory a failed allocation leaves behind
(fragmented heaps, half-built model state) is not trusted.

`PODIUM_MEMORY_RLIMIT=off` (server or endpoint environment) leaves only the poll.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Mapping

ENV_MEMORY_LIMIT = "PODIUM_MEMORY_LIMIT_MB"
ENV_MEMORY_RLIMIT = "PODIUM_MEMORY_RLIMIT"  # "off": no kernel limit, the backend polls only
OUT_OF_MEMORY = "the replica ran out of memory serving this request"
_OFF = frozenset({"off", "0", "false", "no"})
MiB = 1024 * 1024

log = logging.getLogger("podium.replica")


def limit_mb(environ: Mapping[str, str] = os.environ) -> int | None:
    """The instance type's memory in MiB, if the backend said."""
    raw = environ.get(ENV_MEMORY_LIMIT, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def apply_limit(environ: Mapping[str, str] = os.environ) -> int | None:
    """Set RLIMIT_DATA to the instance type's memory; the MiB applied, or None."""
    mb = limit_mb(environ)
    if mb is None or environ.get(ENV_MEMORY_RLIMIT, "").strip().lower() in _OFF:
        return None
    limit = mb * MiB
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ValueError, OSError) as e:  # not allowed here: the backend's poll remains
        log.warning("cannot set the memory limit (RLIMIT_DATA): %s", e)
        return None
    return limit // MiB


def describe(mb: int | None) -> str:
    """`the replica ran out of memory serving this request (limit 256 MiB)`."""
    return OUT_OF_MEMORY + (f" (limit {mb} MiB)" if mb is not None else "")
