"""The controller's plain reads and writes of the store: events, replica rows, endpoint
statuses (each written only when it changes, with its `status` event) and the revisions it
reads (cached in the state: a revision never changes)."""

from __future__ import annotations

import logging

from podium.control.state import ControllerState
from podium.control.tracked import TrackedReplica
from podium.core.errors import Conflict, PodiumError
from podium.core.phases import EndpointStatus, EventKind
from podium.core.spec import EndpointSpec
from podium.store.db import Database
from podium.store.records import EndpointRecord, RevisionRecord

log = logging.getLogger("podium.control")


class Journal:
    def __init__(self, db: Database, state: ControllerState) -> None:
        self.db = db
        self.state = state

    def event(self, endpoint: str, kind: EventKind, message: str, **data: object) -> None:
        log.info("%s: %s", endpoint, message)
        with self.db.unit_of_work() as uow:
            uow.events.add(endpoint, kind, message, dict(data))

    def save(self, r: TrackedReplica) -> None:
        with self.db.unit_of_work() as uow:
            uow.replicas.upsert(r.record())

    def forget(self, replica_id: str) -> None:
        with self.db.unit_of_work() as uow:
            uow.replicas.delete(replica_id)

    def set_status(self, ep: EndpointRecord, status: EndpointStatus, reason: str | None) -> None:
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
