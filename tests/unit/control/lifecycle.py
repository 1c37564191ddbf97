"""Helpers for the replica lifecycle tests on fake time (draining, rollout order, readiness,
restart backoff), on top of `fakes.py`: a gateway with requests in flight, and the events
of the endpoint in order. The replicas are `tests.support.fake_replicas.FakeReplicas`."""

from __future__ import annotations

from podium.core.phases import EventKind
from podium.store import Database
from podium.store.records import EventRecord
from tests.unit.control.fakes import FakeGateway


class BusyGateway(FakeGateway):
    """A gateway with `busy[replica_id]` requests in flight to each replica."""

    def __init__(self) -> None:
        super().__init__()
        self.busy: dict[str, int] = {}

    def outstanding(self, replica_id: str) -> int:
        return self.busy.get(replica_id, 0)


def all_events(db: Database) -> list[EventRecord]:
    """Every event of the endpoint "spin", oldest first."""
    with db.unit_of_work(read_only=True) as uow:
        return sorted(uow.events.list("spin"), key=lambda e: e.id)


def replica_events(db: Database, kind: EventKind) -> list[str]:
    """The replica ids of the endpoint's events of `kind`, oldest first."""
    return [str(e.data["replica_id"]) for e in all_events(db) if e.kind is kind]
