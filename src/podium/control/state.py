"""Everything one controller remembers between passes, in one object.

`ControllerState` is owned by the loop (`loop.Controller`) and handed to the parts that read
or change it (`actions`, `exits`, `adoption`, `probing`, `draining`, `publishing`): none of
them holds a reference to the controller, and none keeps a copy of this state. It is plain
data plus a few questions about it; it does no I/O (the store is the truth between
controllers: what must outlive one is written by `recall`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from podium.backends.base import ObservedReplica
from podium.control.starts import Starts
from podium.control.tracked import EndpointMemory, TrackedReplica
from podium.core.phases import EndpointStatus
from podium.store.records import EndpointRecord, RevisionRecord


@dataclass(slots=True)
class ControllerState:
    starts: Starts  # replica starts in flight (the pass never waits for them)
    replicas: dict[str, TrackedReplica] = field(default_factory=dict)  # by replica id
    memory: dict[str, EndpointMemory] = field(default_factory=dict)  # by endpoint
    seen: dict[str, EndpointRecord] = field(default_factory=dict)  # last record read
    # The status and reason last read or written per endpoint: a status is written only
    # when it changes.
    status: dict[str, tuple[EndpointStatus, str | None]] = field(default_factory=dict)
    revisions: dict[tuple[str, int], RevisionRecord] = field(default_factory=dict)  # frozen
    decided: dict[str, float] = field(default_factory=dict)  # replica -> wall time of start
    # Where an endpoint's memory comes from the first time this controller needs it (the
    # loop wires `recall.Recall.load`: the store's row); None: a blank memory.
    load_memory: Callable[[str], EndpointMemory] | None = None

    def memory_of(self, endpoint: str) -> EndpointMemory:
        """The endpoint's memory. The first time, it is what a previous controller left
        (`load_memory`), whichever part of a pass asks first: an exit or a hang seen before
        the pass reads the endpoints must count on top of the persisted streak, never
        replace it with a blank one."""
        mem = self.memory.get(endpoint)
        if mem is None:
            mem = self.load_memory(endpoint) if self.load_memory else EndpointMemory()
            self.memory[endpoint] = mem
        return mem

    def failing(self, endpoint: str) -> bool:
        """The target revision cannot run (the failed status may not be written yet)."""
        mem = self.memory.get(endpoint)
        return mem is not None and mem.failure is not None

    def fail(self, endpoint: str, mem: EndpointMemory, reason: str) -> None:
        """Remember that the endpoint's target revision cannot run, for the generation of
        the endpoint last seen (a change by the user clears it)."""
        ep = self.seen.get(endpoint)
        mem.failure = reason
        mem.failure_generation = ep.generation if ep else None

    def of(self, endpoint: str) -> list[TrackedReplica]:
        return [r for r in self.replicas.values() if r.endpoint == endpoint]

    def saw(self, ep: EndpointRecord) -> None:
        """The store's record of the endpoint, as just read: the truth from now on."""
        self.seen[ep.name] = ep
        self.status[ep.name] = (ep.status, ep.status_reason)

    def current_status(self, ep: EndpointRecord) -> EndpointStatus:
        return self.status.get(ep.name, (ep.status, ep.status_reason))[0]

    def is_target(self, r: TrackedReplica) -> bool:
        """The replica is of its endpoint's target revision (or the endpoint is unseen)."""
        ep = self.seen.get(r.endpoint)
        return ep is None or r.revision == ep.revision

    def track(self, obs: ObservedReplica, *, restarts: int, now: float) -> TrackedReplica:
        """Start watching a replica the backend has just started or adopted (as starting)."""
        r = TrackedReplica(
            replica_id=obs.replica_id,
            endpoint=obs.endpoint,
            revision=obs.revision,
            host=obs.host,
            port=obs.port,
            pid=obs.pid,
            started_mono=now,
            started_at=obs.started_at,
            log_location=obs.log_location,
            restarts=restarts,
            starting_since=now,
        )
        self.replicas[r.replica_id] = r
        return r

    def forget_endpoint(self, name: str) -> None:
        """The endpoint was deleted: a new one of the same name starts from nothing (its
        revisions are numbered from 1 again)."""
        self.status.pop(name, None)
        self.seen.pop(name, None)
        self.memory.pop(name, None)
        self.revisions = {k: v for k, v in self.revisions.items() if k[0] != name}
