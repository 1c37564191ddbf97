"""Stand-ins for what the live view and the figures read: a scripted gateway (the API's
`LiveSource`), latency bucket counts, and points of the metrics history written straight
into a store (what the controller's sampler writes)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

from podium.core.request_record import RecordBuffer
from podium.core.routing import EndpointLoad
from podium.core.service_counts import N_BUCKETS, ServiceSnapshot
from podium.store import Database
from podium.store.tables import MetricPointRow


def buckets(**at: int) -> tuple[int, ...]:
    """Latency bucket counts: `b3=5` puts 5 in bucket 3 (`core.metric_names`)."""
    out = [0] * N_BUCKETS
    for name, count in at.items():
        out[int(name[1:])] = count
    return tuple(out)


@dataclass
class ScriptedGateway:
    """A `LiveSource` (api/deps.py): the counts a test says the gateway has."""

    snapshot: ServiceSnapshot
    loads: Mapping[str, EndpointLoad] = field(default_factory=dict)
    in_flight: Mapping[str, int] = field(default_factory=dict)
    records: RecordBuffer | None = None

    def service_snapshot(self) -> ServiceSnapshot:
        return self.snapshot

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return self.loads

    def outstanding(self, replica_id: str) -> int:
        return self.in_flight.get(replica_id, 0)


def point(endpoint: str, replica: str, ts: float, **values: Any) -> MetricPointRow:
    """A 10 s point (resolution and zeros by default) of `endpoint` or one of its replicas."""
    fields: dict[str, Any] = {
        "resolution": 10,
        "requests": 0,
        "ok": 0,
        "errors_4xx": 0,
        "errors_5xx": 0,
        "cancelled": 0,
        "latency_sum_ms": 0.0,
        "latency_buckets": [0] * N_BUCKETS,
        "in_flight": 0.0,
        "held": 0.0,
        "bytes_in": 0,
        "bytes_out": 0,
    }
    fields.update(values)
    return MetricPointRow(endpoint=endpoint, replica=replica, ts=int(ts), **fields)


def insert(db: Database, *points: MetricPointRow) -> None:
    with db.unit_of_work() as uow:
        uow.session.add_all(points)


@contextmanager
def counted_queries(db: Database) -> Iterator[list[str]]:
    """The SELECT statements `db` runs inside the block."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
