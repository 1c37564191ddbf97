"""The endpoint memory that outlives a controller (a server restart, another server taking
the lead): read from the store the first time a controller needs it (`load`, wired as
`ControllerState.load_memory`, so an exit in the first pass counts on top of the stored
streak), written back at the end of a pass when it has changed (never on every pass).

Kept (`store.records.EndpointMemoryRecord`): the crash streak and when its last crash was,
the backoff, the serving-crash streak and its revision, the restart count, the failure with
the endpoint generation it applies to, and the autoscaler's last decision (count, reason,
time).

Monotonic readings do not survive the process (another process's monotonic clock starts
elsewhere), so `crashed_at`, `backoff_until` and `scaled_at` are stored as wall-clock times
and turned back into this process's monotonic time when read: a backoff with 3 s left when
the controller stopped ends 3 s after that, whoever then runs the loop (it has simply
ended if the controller was down longer).

Not kept: starts that were pending (the next plan decides again) and the gateway's
success count at the last serving crash. That count belongs to a gateway, whose counters
start at zero when it restarts: a restored serving streak is compared with 0, so any
successful request after the restart ends it, and none continues it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from podium.control.state import ControllerState
from podium.control.tracked import EndpointMemory
from podium.core.clock import Clock
from podium.core.phases import EndpointStatus
from podium.store.db import Database
from podium.store.records import EndpointMemoryRecord, EndpointRecord


def persisted_key(mem: EndpointMemory) -> tuple[object, ...]:
    """The part of the memory that is written to the store (compared to skip writes)."""
    return (
        mem.crash_streak,
        mem.crashed_at,
        mem.backoff_until,
        mem.serving_crashes,
        mem.serving_revision,
        mem.restarts,
        mem.failure,
        mem.failure_generation,
        mem.scale_desired,
        mem.scale_reason,
        mem.scaled_at,
    )


class Recall:
    def __init__(self, db: Database, clock: Clock, state: ControllerState) -> None:
        self.db = db
        self.clock = clock
        self.state = state

    def load(self, name: str) -> EndpointMemory:
        """The endpoint's memory as the store keeps it (blank if it has none); the loop
        wires this as `ControllerState.load_memory`, so the first part of a pass that needs
        an endpoint's memory (an exit, a hang, the reconcile) reads it."""
        with self.db.unit_of_work(read_only=True) as uow:
            row = uow.memory.get(name)
        mem = EndpointMemory() if row is None else self._memory(row)
        mem.saved = persisted_key(mem)
        return mem

    def remember(self, ep: EndpointRecord) -> EndpointMemory:
        """The endpoint's memory, with what its record says the first time this controller
        sees the endpoint: failed before any memory was written stays failed until the user
        changes the endpoint (its generation moves on)."""
        mem = self.state.memory_of(ep.name)
        if not mem.record_seen:
            mem.record_seen = True
            if ep.status is EndpointStatus.FAILED and mem.failure is None:
                mem.failure = ep.status_reason or "failed"
                mem.failure_generation = ep.generation
        return mem

    def save_changed(self) -> None:
        """Write the memory of every endpoint whose persisted part changed."""
        for name, mem in self.state.memory.items():
            key = persisted_key(mem)
            if key == mem.saved:
                continue
            with self.db.unit_of_work() as uow:
                uow.memory.put(self._record(name, mem))
            mem.saved = key

    # ------------------------------------------------------------------ conversions

    def _wall(self, mono: float | None) -> datetime | None:
        if not mono:
            return None
        return self.clock.now() + timedelta(seconds=mono - self.clock.monotonic())

    def _mono(self, wall: datetime | None) -> float | None:
        if wall is None:
            return None
        return self.clock.monotonic() + (wall - self.clock.now()).total_seconds()

    def _record(self, name: str, mem: EndpointMemory) -> EndpointMemoryRecord:
        return EndpointMemoryRecord(
            endpoint=name,
            crash_streak=mem.crash_streak,
            crashed_at=self._wall(mem.crashed_at),
            backoff_until=self._wall(mem.backoff_until),
            serving_crashes=mem.serving_crashes,
            serving_revision=mem.serving_revision,
            restarts=mem.restarts,
            failure=mem.failure,
            failure_generation=mem.failure_generation,
            scale_desired=mem.scale_desired,
            scale_reason=mem.scale_reason,
            scaled_at=self._wall(mem.scaled_at),
        )

    def _memory(self, row: EndpointMemoryRecord) -> EndpointMemory:
        return EndpointMemory(
            crash_streak=row.crash_streak,
            crashed_at=self._mono(row.crashed_at) or 0.0,
            backoff_until=self._mono(row.backoff_until) or 0.0,
            serving_crashes=row.serving_crashes,
            # The gateway's counters restarted with it (see the module docstring).
            succeeded_at_crash=0 if row.serving_crashes else None,
            serving_revision=row.serving_revision,
            restarts=row.restarts,
            failure=row.failure,
            failure_generation=row.failure_generation,
            scale_desired=row.scale_desired,
            scale_reason=row.scale_reason,
            scaled_at=self._mono(row.scaled_at),
        )
