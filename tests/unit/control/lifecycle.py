"""Fakes for the replica lifecycle tests on fake time (draining, rollout order, readiness,
restart backoff), on top of `fakes.py`: replicas whose readiness the test switches, a
gateway with requests in flight, and the events of the endpoint in order."""

from __future__ import annotations

import httpx

from podium.core.phases import EventKind
from podium.store import Database
from podium.store.records import EventRecord
from tests.unit.control.fakes import FakeGateway


class Probes:
    """What the fake replicas answer: `refused` hosts are not listening (a replica that is
    starting, or has crashed), `not_ready` hosts answer readiness with 503. Hosts are
    `r1.test`, `r2.test`, … in the order the backend started them."""

    def __init__(self, *, refuse_all: bool = False) -> None:
        self.refuse_all = refuse_all
        self.refused: set[str] = set()
        self.not_ready: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if self.refuse_all or host in self.refused:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/health/ready" and host in self.not_ready:
            return httpx.Response(503, json={"title": "Not Ready"})
        return httpx.Response(200, json={"status": "ok"})


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
