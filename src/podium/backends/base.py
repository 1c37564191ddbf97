"""The Backend protocol: the one seam through which the controller starts and stops replicas.

The protocol is async: the controller awaits every call on its own event loop, so a backend
that talks to other machines can do so without a thread per call, and the local backend
moves its blocking work (a fork, a spawn, a process-tree walk) off that loop with
`asyncio.to_thread`. A few cheap reads stay plain calls (said on each).

A backend starts replicas of a model it is given by reference (`ModelSource`), not by a
path: fetching the model's files onto the node that runs the replica is the backend's job.
The controller asks, without waiting, whether a model is ready where the backend would
place its replicas (`prepare`, each pass) and starts replicas only once it is.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from podium.core.phases import ExitReason
from podium.core.spec import BatchingSpec, CommandSpec, ContainerSpec, InstanceType


@dataclass(frozen=True, slots=True)
class ModelSource:
    """The model a replica serves, as a reference a node can fetch, never a local path.

    `ref`: "iris:3" (the model repository), "hf://org/name[@rev]" or
    "s3://bucket/prefix[@digest]". `digest`: what the files must be: the sha256 the store
    recorded for a repository model (`artifacts.hashing`), the Hub revision asked for an
    `hf://` model (None: the default branch), the listing digest an `s3://` reference pins
    (`artifacts.s3`; None: whatever the prefix holds when fetched). `location`:
    where the repository keeps a repository model's files (a folder of the artifact store),
    for a node that can read it; None for `hf://` models. `token`: the Hugging Face token
    of an `hf://` model (the value of the endpoint's `model_source.token_secret`; None: the
    server's own `HF_TOKEN`): never shown (`repr`), but part of equality, so one model asked
    for with two tokens is two downloads (a token that may not read it fails alone).
    `s3_keys`: (access key id, secret access key) of an `s3://` model (the values of the
    endpoint's `model_source.access_key_secret` / `secret_key_secret`; None: the server's
    own environment keys, where the operator lends them, PODIUM_S3_SERVER_CREDENTIALS),
    kept like `token`."""

    ref: str
    digest: str | None = None
    location: str | None = None
    token: str | None = field(default=None, repr=False)
    s3_keys: tuple[str, str] | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.ref


class Readiness(enum.StrEnum):
    READY = "ready"  # the model is on the node(s): replicas can start
    FETCHING = "fetching"  # being fetched: ask again later
    FAILED = "failed"  # cannot be fetched (`reason`): the revision cannot run


@dataclass(frozen=True, slots=True)
class Preparation:
    """A backend's answer to "is this model ready where you would start its replicas?".

    While `FETCHING`: `label` names what is fetched, `origin` where from (shown to people,
    no credentials), `bytes_done` of `bytes_total` (None: not told). Once `READY` after a
    fetch, `bytes_done` says how much was fetched and `resolved` the pinned reference."""

    state: Readiness
    label: str = ""
    origin: str = ""
    bytes_done: int = 0
    bytes_total: int | None = None
    resolved: str | None = None
    reason: str | None = None  # FAILED: why

    @classmethod
    def ready(cls) -> Preparation:
        return cls(Readiness.READY)


@dataclass(frozen=True, slots=True)
class ReplicaSize:
    """What one replica asks of the node that runs it: CPUs, memory (MiB), GPUs. A backend
    that places replicas on a cluster maps it to its own resources (Ray: `num_cpus`,
    `memory` in bytes, `num_gpus`); the local backend gives `gpus` devices of its own
    (`gpu_inventory`)."""

    cpus: float
    memory_mb: int
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class ReplicaLaunch:
    """Everything a backend needs to start one replica of one revision."""

    replica_id: str
    endpoint: str
    revision: int
    runtime: str  # the endpoint's framework, e.g. "sklearn"
    model: ModelSource  # the backend finds (or fetches) its files on the replica's node
    instance_type: InstanceType
    task: str | None = None
    # The spec's `env` and its decrypted `env_from_secrets`: never in a repr.
    env: dict[str, str] = field(default_factory=dict, repr=False)
    max_concurrency: int = 8
    max_queue: int = 64
    trust_pickle: bool = False
    batching: BatchingSpec | None = None
    command: CommandSpec | None = None  # framework `command`: run this instead of a replica
    engine_args: dict[str, str | int | float | bool] = field(default_factory=dict)
    model_version: str | None = None  # the model's own version ("3" of iris:3), for protocols
    # Framework `container` (or a preset run from its image): the spec's block, and the
    # decrypted value of its `registry_secret` (`backends.container_auth` reads it; None:
    # no secret): never in a repr.
    container: ContainerSpec | None = None
    registry_credentials: str | None = field(default=None, repr=False)

    @property
    def size(self) -> ReplicaSize:
        """The replica's size, from its instance type (a named one or `resources`)."""
        it = self.instance_type
        return ReplicaSize(cpus=it.cpus, memory_mb=it.memory_mb, gpus=it.gpus)


@dataclass(frozen=True, slots=True)
class ObservedReplica:
    """A backend's view of one replica it manages: where it answers (`host`, `port`), on
    whichever machine the backend placed it. `pid` is for people and events (a remote
    backend may not know one); `log_location` says where the backend keeps the replica's log
    (a path for the local backend, something else for a remote one), kept in the store so a
    later server's backend can find it: readers ask the backend (`ReplicaLogs`), never the
    location itself."""

    replica_id: str
    endpoint: str
    revision: int
    host: str
    port: int
    started_at: datetime
    alive: bool
    pid: int | None = None
    log_location: str | None = None
    exit_code: int | None = None
    exit_reason: ExitReason | None = None
    error: str | None = None  # load error or last log lines, for events
    start_mode: str | None = None  # "fork" (from a warm zygote) or "spawn"; None: not told


@dataclass(frozen=True, slots=True)
class ReplicaStartup:
    """How one replica started, and how long each phase of the start took."""

    start_mode: str  # "fork" or "spawn"
    launched_at: float  # wall clock (time.time()) when the backend asked for the process
    # seconds, in order: "fork" | "spawn" (asked for -> replica code running), "import",
    # "load" (the model), "listen" (serving); only the phases reached so far
    phases: dict[str, float] = field(default_factory=dict)
    listening_at: float | None = None  # wall clock when the replica started serving


@dataclass(frozen=True, slots=True)
class ReplicaResources:
    """What one replica uses now, as its backend measures it (the metrics history).

    `cpu_percent`: 100 = one core busy, over the time since the previous reading (0.0 on
    the first one). `rss_bytes`: resident memory of the replica's process tree. GPU figures
    are None when the backend sees no GPU used by the replica (no NVML, no GPU, or a GPU
    that none of its processes holds). `cpus` / `gpus`: the replica's limits when known."""

    cpu_percent: float = 0.0
    rss_bytes: int = 0
    gpu_util_percent: float | None = None
    gpu_memory_bytes: int | None = None
    cpus: float | None = None
    gpus: int | None = None


@dataclass(frozen=True, slots=True)
class AdoptCandidate:
    """A replica a previous server process started, as remembered in the store."""

    replica_id: str
    endpoint: str
    revision: int
    host: str
    port: int
    pid: int | None
    started_at: datetime
    log_location: str | None = None  # as the backend reported it (`ObservedReplica`)


@runtime_checkable
class ReportsStartup(Protocol):
    """Optional for a backend: what each phase of a replica's start took. A plain call: the
    answer is what the backend already knows of the replica (a small status file on this
    node for `local`; a remote backend answers from the reports it has received)."""

    def startup(self, replica_id: str) -> ReplicaStartup | None: ...


@runtime_checkable
class HasRoom(Protocol):
    """Optional for a backend that places replicas on devices it counts (the local backend's
    GPUs): asked by the controller before it starts replicas, so that a replica that cannot
    be placed is held pending instead of started and refused each pass. A plain call: the
    answer is in the backend's memory. A start may still be refused (`core.errors.NoRoom`)
    when another start took the room meanwhile."""

    def room_for(self, size: ReplicaSize, without: Collection[str] = ()) -> int | None:
        """How many more replicas of this size can be placed now, or once the replicas
        `without` are gone (what they hold counted free: the controller asks whether
        draining an old revision's replicas would make room before it drains them); None:
        no limit this backend knows of (it asks for no counted device, or the backend does
        not count)."""
        ...


@runtime_checkable
class RunsContainers(Protocol):
    """Optional for a backend that runs container replicas (`framework: container`): the
    engine it runs them with, for the server's start-up line ("podman 4.3.1
    (/usr/bin/podman)", or "none (why)"). Blocking: it may look for the engine."""

    def container_engine(self) -> str: ...


@runtime_checkable
class Prewarms(Protocol):
    """Optional for a backend: get ready to start this runtime's replicas fast."""

    async def prewarm(self, runtime: str) -> None: ...


@runtime_checkable
class KeepsLogs(Protocol):
    """Optional for a backend: replica logs that outlive their replicas, until this."""

    async def forget_endpoint(self, endpoint: str) -> None: ...


class LogFollower(Protocol):
    """One replica's log being followed."""

    def read_new(self) -> list[str]:
        """The complete lines written since the last call ([] if none)."""
        ...


class ReplicaLogs(Protocol):
    """Replica logs, read only through the backend that placed the replicas: it knows where
    they live (files on this node for `local`, the replica's node for a remote backend).
    Logs outlive their replica and the server that started it, until the endpoint is
    deleted (`KeepsLogs.forget_endpoint`) or a retention drops the oldest.

    Plain (blocking) calls: their readers are the API's handlers, which FastAPI runs in its
    thread pool, and a follower's loop, which polls `read_new` from a thread. The controller
    reads a log tail the same way, from a thread (`asyncio.to_thread`), never on its loop."""

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        """The last `tail` lines of the replica's stdout+stderr (also after it exited, and
        for a replica of a previous server); [] when there is no log."""
        ...

    def kept_logs(self, endpoint: str) -> list[str]:
        """The ids of the endpoint's replicas whose logs are kept, oldest first (running
        and exited ones alike)."""
        ...

    def follow_logs(self, replica_id: str, tail: int | None) -> tuple[list[str], LogFollower]:
        """The last `tail` complete lines of the replica's log and a follower of the lines
        written after them; `tail` None: no lines now, the follower starts at the log's
        first line (a replica that appeared while following). A log that does not exist
        yet is followed from when it appears."""
        ...


class Backend(ReplicaLogs, Protocol):
    name: str

    async def prepare(self, model: ModelSource) -> Preparation:
        """Is `model` ready where this backend would start its replicas? Never waits for a
        fetch: the first call may start one (READY at once for a model already there, or
        for a backend whose replicas fetch it themselves); later calls report its progress,
        then READY, or FAILED with the reason."""
        ...

    async def retain(self, models: Iterable[ModelSource]) -> None:
        """Only `models` are still wanted: cancel the fetches of the others and forget what
        was prepared for them (the next `prepare` of one looks again)."""
        ...

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        """Start the replica process and return once it is launched (readiness is probed by
        the caller). Finds the model's files on the node itself; raises `LoadError` when the
        model cannot be found there (or is not what `launch.model.digest` says)."""
        ...

    async def stop(self, replica_id: str) -> None:
        """Ask the replica to exit gracefully (in-flight requests finish). Non-blocking:
        `poll` escalates to a kill after the stop timeout and reports the exit."""
        ...

    async def kill(self, replica_id: str, reason: ExitReason) -> None:
        """Kill the replica now (failed liveness, readiness timeout); `poll` reports the exit
        with this reason."""
        ...

    async def poll(self) -> list[ObservedReplica]:
        """Every replica this backend manages, including ones that exited since the last poll
        (reported once, then forgotten). Also enforces memory limits (exit_reason=OOM)."""
        ...

    async def adopt(self, candidates: list[AdoptCandidate]) -> list[ObservedReplica]:
        """Take over replicas of a previous server process that are still alive; return those
        adopted. Candidates not alive (or not ours) are ignored."""
        ...

    async def resources(self, replica_ids: Iterable[str]) -> Mapping[str, ReplicaResources]:
        """CPU, memory and GPU use of these replicas now (`ReplicaResources`); a replica the
        backend does not know or cannot measure is left out. Never raises for a replica
        that has just exited."""
        ...

    async def close(self, *, stop_replicas: bool = True) -> None: ...
