"""The controller's plain reads and writes of the store: events, replica rows and their
usage rows (`replica_usage`: opened when a replica starts, closed when it is forgotten),
endpoint statuses (each written only when it changes, with its `status` event) and the
revisions it reads (cached in the state: a revision never changes).

Every message, event datum and status reason written here passes through `secrets`
(`core.redact.Secrets`): the secret values the controller has decrypted become `***`."""

from __future__ import annotations

import logging

from podium.control.state import ControllerState
from podium.control.tracked import TrackedReplica
from podium.core import redact
from podium.core.access import split_key
from podium.core.clock import Clock, SystemClock
from podium.core.errors import Conflict, PodiumError
from podium.core.phases import EndpointStatus, EventKind
from podium.core.spec import EndpointSpec
from podium.store.db import Database
from podium.store.records import EndpointRecord, RevisionRecord
from podium.store.usage import RowSize

log = logging.getLogger("podium.control")


class Journal:
    def __init__(self, db: Database, state: ControllerState, clock: Clock | None = None) -> None:
        self.db = db
        self.state = state
        self.clock = clock or SystemClock()
        self.secrets = redact.Secrets()

    def event(self, endpoint: str, kind: EventKind, message: str, **data: object) -> None:
        message = self.secrets.text(message)
        log.info("%s: %s", endpoint, message)
        with self.db.unit_of_work() as uow:
            uow.events.add(endpoint, kind, message, self.secrets.data(dict(data)))

    def save(self, r: TrackedReplica) -> None:
        with self.db.unit_of_work() as uow:
            uow.replicas.upsert(r.record())

    def started(self, r: TrackedReplica, instance_type: str, size: RowSize | None = None) -> None:
        """A replica started (or was adopted): its row, and its usage row from now (an
        adopted one keeps the row its first server opened); `size`: a `custom` one's."""
        with self.db.unit_of_work() as uow:
            uow.replicas.upsert(r.record())
            uow.usage.open(
                r.replica_id,
                endpoint=r.endpoint,
                project=split_key(r.endpoint)[0],
                instance_type=instance_type,
                size=size,
                started_at=self.clock.now(),
            )

    def forget(self, replica_id: str) -> None:
        """The replica is gone (stopped, exited, lost): its row goes, its usage ends now."""
        with self.db.unit_of_work() as uow:
            uow.replicas.delete(replica_id)
            uow.usage.close(replica_id, self.clock.now())

    def end_usage(self) -> None:
        """The controller stops: every open usage row ends now. The backend may stop the
        replicas or leave them to a later server, which opens the rows of those it adopts
        again (`UsageRepo.open`)."""
        try:
            with self.db.unit_of_work() as uow:
                uow.usage.close_all_but((), self.clock.now())
        except PodiumError as e:
            log.warning("usage rows not closed at stop: %s", e)

    def close_stale_usage(self) -> None:
        """At a server start, after adoption: usage rows a previous server left open for
        replicas that are not tracked now (it did not stop cleanly) end now: when they
        really ended is not recorded."""
        with self.db.unit_of_work() as uow:
            closed = uow.usage.close_all_but(self.state.replicas, self.clock.now())
        if closed:
            log.info("closed %d usage rows left open by a previous server", closed)

    def set_status(self, ep: EndpointRecord, status: EndpointStatus, reason: str | None) -> None:
        reason = None if reason is None else self.secrets.text(reason)
        cache = self.state.status
        old = cache.get(ep.name, (ep.status, ep.status_reason))
        if old == (status, reason):
            return
        try:
            with self.db.unit_of_work() as uow:
                changed = uow.endpoints.set_status(ep.name, status, reason)
                if changed and old[0] is not status:
                    text = f"status {old[0].value} → {status.value}" + (
                        f": {reason}" if reason else ""
                    )
                    uow.events.add(
                        ep.name,
                        EventKind.STATUS,
                        text,
                        {"from": old[0].value, "to": status.value, "reason": reason},
                    )
        except Conflict as e:
            log.warning("%s: %s", ep.name, e)
            return
        except PodiumError as e:  # e.g. deleted by the API meanwhile
            log.info("%s: status not written: %s", ep.name, e)
            return
        cache[ep.name] = (status, reason)

    def revision(self, endpoint: str, number: int) -> RevisionRecord:
        """Revision `number` of the endpoint (cached: revisions never change)."""
        key = (endpoint, number)
        cache = self.state.revisions
        if key not in cache:
            with self.db.unit_of_work(read_only=True) as uow:
                cache[key] = uow.endpoints.revision(endpoint, number)
        return cache[key]

    def revision_spec(self, endpoint: str, number: int) -> EndpointSpec | None:
        """The spec revision `number` froze; None if it is gone."""
        try:
            return self.revision(endpoint, number).spec
        except PodiumError:
            return None
