"""Status enums and their allowed transitions.

Endpoint status (the transition table is in docs/architecture.md, "Endpoint status"):

    pending ──► initializing ──► running ◄──► updating
       │             │  ▲           │ ▲          │
       │             ▼  │           ▼ │          ▼
       └──────────► failed ◄──── paused / scaled_to_zero
    any ──► deleting (terminal; the row is removed when its replicas are gone)
"""

from __future__ import annotations

from enum import StrEnum

from podium.core.errors import Conflict


class EndpointStatus(StrEnum):
    PENDING = "pending"
    INITIALIZING = "initializing"
    RUNNING = "running"
    UPDATING = "updating"
    PAUSED = "paused"
    SCALED_TO_ZERO = "scaled_to_zero"
    FAILED = "failed"
    DELETING = "deleting"


_S = EndpointStatus

TRANSITIONS: dict[EndpointStatus, frozenset[EndpointStatus]] = {
    _S.PENDING: frozenset(
        {
            _S.INITIALIZING,
            _S.RUNNING,
            _S.UPDATING,
            _S.PAUSED,
            _S.SCALED_TO_ZERO,
            _S.FAILED,
            _S.DELETING,
        }
    ),
    _S.INITIALIZING: frozenset(
        {_S.RUNNING, _S.UPDATING, _S.PAUSED, _S.SCALED_TO_ZERO, _S.FAILED, _S.DELETING}
    ),
    _S.RUNNING: frozenset(
        {_S.INITIALIZING, _S.UPDATING, _S.PAUSED, _S.SCALED_TO_ZERO, _S.FAILED, _S.DELETING}
    ),
    _S.UPDATING: frozenset(
        {_S.RUNNING, _S.INITIALIZING, _S.PAUSED, _S.SCALED_TO_ZERO, _S.FAILED, _S.DELETING}
    ),
    _S.PAUSED: frozenset({_S.PENDING, _S.INITIALIZING, _S.RUNNING, _S.SCALED_TO_ZERO, _S.DELETING}),
    _S.SCALED_TO_ZERO: frozenset(
        {_S.INITIALIZING, _S.RUNNING, _S.UPDATING, _S.PAUSED, _S.FAILED, _S.DELETING}
    ),
    _S.FAILED: frozenset({_S.PENDING, _S.INITIALIZING, _S.UPDATING, _S.PAUSED, _S.DELETING}),
    _S.DELETING: frozenset(),
}


def can_transition(old: EndpointStatus, new: EndpointStatus) -> bool:
    return old == new or new in TRANSITIONS[old]


def check_transition(old: EndpointStatus, new: EndpointStatus) -> None:
    if not can_transition(old, new):
        raise Conflict(f"an endpoint cannot go from {old.value} to {new.value}", field="status")


class ReplicaState(StrEnum):
    """Observed state of one replica process."""

    STARTING = "starting"  # process started, readiness probe not yet passed
    READY = "ready"  # passes readiness; in the routing table
    DRAINING = "draining"  # out of the routing table, finishing in-flight requests
    STOPPING = "stopping"  # asked to exit
    EXITED = "exited"  # process ended (crash, OOM, load failure or stop)


class EventKind(StrEnum):
    STATUS = "status"  # endpoint status changed
    REPLICA_STARTING = "replica_starting"
    REPLICA_READY = "replica_ready"
    REPLICA_CRASHED = "replica_crashed"
    REPLICA_RESTARTED = "replica_restarted"
    REPLICA_STOPPED = "replica_stopped"
    REPLICA_UNHEALTHY = "replica_unhealthy"
    REPLICA_HUNG = "replica_hung"  # restarted: a call ran past the timeout, or no answer
    REPLICA_OOM = "replica_oom"
    REPLICA_ADOPTED = "replica_adopted"
    REPLICA_WAITING = "replica_waiting"  # cannot be placed yet (GPUs busy): held pending
    ROLLOUT = "rollout"
    SCALED = "scaled"
    SPEC = "spec"  # created / updated / paused / resumed by a user
    DOWNLOAD_STARTED = "download_started"  # a model (hf://) is being fetched onto this node
    DOWNLOAD_PROGRESS = "download_progress"  # bytes so far (of the total when known)
    DOWNLOAD_DONE = "download_done"
    DOWNLOAD_FAILED = "download_failed"  # with the reason (stalled, not found, …)


class ExitReason(StrEnum):
    STOPPED = "stopped"  # we asked it to stop
    CRASHED = "crashed"  # exited on its own with a non-zero code
    LOAD_FAILED = "load_failed"  # the runtime could not load the model
    OOM = "oom"  # killed for exceeding the instance type's memory
    UNHEALTHY = "unhealthy"  # killed after failing its liveness probe
    HUNG = "hung"  # killed: a call ran far past the endpoint's timeout, or probes unanswered
    LOST = "lost"  # disappeared (e.g. not found after a server restart)
