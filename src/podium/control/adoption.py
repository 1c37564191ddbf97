"""Adoption: after a server start, take over the replicas a previous server started.

The store lists the replicas the last controller knew; the backend says which of them
still run (`Backend.adopt`). Those are tracked again (as starting: the next probe decides);
the others are recorded as lost, with the last lines of their logs, and their usage rows
end now. Usage rows left open for replicas the store no longer lists end now too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from podium.backends.base import AdoptCandidate, Backend, ObservedReplica
from podium.control.exits import Exits
from podium.control.journal import Journal
from podium.control.state import ControllerState
from podium.core.clock import Clock
from podium.core.phases import EventKind, ExitReason
from podium.store.records import ReplicaRecord

log = logging.getLogger("podium.control")


class Adoption:
    def __init__(
        self,
        backend: Backend,
        clock: Clock,
        state: ControllerState,
        journal: Journal,
        exits: Exits,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.state = state
        self.journal = journal
        self.exits = exits

    async def adopt_all(self, managed: Mapping[str, ObservedReplica] | None = None) -> None:
        """After a server start: take over the replicas the store lists that still run;
        the others are recorded as lost. `managed`: replicas this process's backend runs
        already (a controller that led before, lost the lead and leads again, issue 16):
        tracked as they are, not asked of `Backend.adopt` (which adopts only strangers)."""
        managed = managed or {}
        with self.journal.db.unit_of_work(read_only=True) as uow:
            rows = uow.replicas.list()
        named = {r.replica_id for r in rows}
        for rid in managed.keys() - named:
            log.warning("replica %s runs but the store does not name it; left alone", rid)
        if not rows:
            self.journal.close_stale_usage()
            return
        candidates = [
            AdoptCandidate(
                replica_id=r.replica_id,
                endpoint=r.endpoint,
                revision=r.revision,
                host=r.host,
                port=r.port,
                pid=r.pid,
                started_at=r.started_at,
                log_location=r.log_path or None,
            )
            for r in rows
            if r.replica_id not in managed
        ]
        adopted = {o.replica_id: o for o in await self.backend.adopt(candidates)}
        adopted.update((rid, obs) for rid, obs in managed.items() if rid in named)
        for row in rows:
            found: ObservedReplica | None = adopted.get(row.replica_id)
            if found is None:
                await self.forget_lost(row)
                continue
            self.track_adopted(found, restarts=row.restarts)
        log.info("adopted %d of %d replicas", len(adopted), len(rows))
        self.journal.close_stale_usage()

    def track_adopted(self, obs: ObservedReplica, *, restarts: int) -> None:
        r = self.state.track(obs, restarts=restarts, now=self.clock.monotonic())
        spec = self.journal.revision_spec(obs.endpoint, obs.revision)
        self.journal.started(r, spec.instance_type if spec is not None else "unknown")
        self.journal.event(
            r.endpoint,
            EventKind.REPLICA_ADOPTED,
            f"replica {r.replica_id} adopted after a server restart (pid {obs.pid})",
            replica_id=r.replica_id,
            pid=obs.pid,
        )

    async def forget_lost(self, row: ReplicaRecord) -> None:
        self.journal.forget(row.replica_id)
        self.journal.event(
            row.endpoint,
            EventKind.REPLICA_CRASHED,
            f"replica {row.replica_id} was not running after the server restarted",
            replica_id=row.replica_id,
            reason=ExitReason.LOST.value,
            log_tail=await self.exits.log_tail(row.replica_id),
        )
