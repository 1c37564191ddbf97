"""What the controller remembers about each replica and each endpoint between ticks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from podium.core.phases import ReplicaState
from podium.store.records import ReplicaRecord


@dataclass(slots=True)
class TrackedReplica:
    replica_id: str
    endpoint: str
    revision: int
    host: str
    port: int
    pid: int | None
    started_mono: float
    started_at: datetime
    log_location: str | None  # where the backend keeps its log (`ObservedReplica`)
    state: ReplicaState = ReplicaState.STARTING
    restarts: int = 0
    ready_at: float | None = None
    next_probe: float = 0.0  # readiness while starting, liveness+readiness once ready
    readiness_failures: int = 0
    liveness_failures: int = 0
    readiness_successes: int = 0  # passes in a row (`success_threshold`)
    liveness_successes: int = 0
    drain_since: float | None = None
    # When a table without it was first stored while it drained (`publishing`): its grace
    # before it is stopped counts from here, never from a table no gateway has yet.
    unrouted_at: float | None = None
    starting_since: float = 0.0  # when it (re)entered STARTING: bounds the wait for readiness
    kill_detail: str | None = None  # why we killed it (liveness, readiness timeout)
    was_ready: bool = False  # it became ready once: an exit now is a crash while serving
    kill_figures: dict[str, float] = field(default_factory=dict)  # e.g. how long it hung
    counted: bool = False  # its end was counted when it was killed (hung): not again at exit
    unanswered_since: float | None = None  # first liveness probe it has not answered since

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def record(self) -> ReplicaRecord:
        return ReplicaRecord(
            replica_id=self.replica_id,
            endpoint=self.endpoint,
            revision=self.revision,
            state=self.state,
            host=self.host,
            port=self.port,
            pid=self.pid,
            started_at=self.started_at,
            restarts=self.restarts,
            log_path=self.log_location or "",
        )


@dataclass(slots=True)
class EndpointMemory:
    """Per-endpoint controller state between passes. The part that must outlive this
    controller (streaks, failure, last scale decision) is written to the store when it
    changes and read back when a controller first needs it (`control.recall`); the rest
    (pending restarts) is rebuilt by the next passes."""

    crash_streak: int = 0  # replicas that crashed in a row before becoming ready
    crashed_at: float = 0.0  # when the last of them crashed (monotonic)
    backoff_until: float = 0.0
    # Crashes and hangs of replicas that had become ready, in a row with no successful
    # request of their revision between them (see `exits.Exits.serving_crash`), the
    # revision's count of successful requests at the last one (None: not known), and
    # that revision.
    serving_crashes: int = 0
    succeeded_at_crash: int | None = None
    serving_revision: int | None = None
    restarts: int = 0  # replacements started after crashes (for the restarted event)
    pending_restarts: int = 0
    failure: str | None = None
    failure_generation: int | None = None
    # The autoscaler's last decision: the count it wrote, why, and when (monotonic).
    scale_desired: int | None = None
    scale_reason: str | None = None
    scaled_at: float | None = None
    # Why its replicas cannot be placed now (e.g. GPUs busy), said once as an event and
    # shown as the status reason until a start has room again. Not persisted: the next
    # controller asks the backend again.
    waiting_for: str | None = None
    unplaced: int = 0  # how many of its target revision's replicas wait for room
    saved: tuple[object, ...] | None = None  # `recall.persisted_key` as last written
    record_seen: bool = False  # `recall.remember` has applied the endpoint's record once

    def forget_failure(self) -> None:
        """The endpoint changed (a new generation): its failure and streaks start over."""
        self.failure = self.failure_generation = None
        self.crash_streak, self.backoff_until = 0, 0.0
        self.serving_crashes, self.succeeded_at_crash, self.serving_revision = 0, None, None
