"""Endpoint memory rows: what the controller must not forget when it restarts or another
server takes the lead (crash streaks, failures, the autoscaler's last decision).

Observed state, written by the controller only when it changes; one row per endpoint,
deleted with the endpoint (`EndpointRepo.delete`, and the foreign key's cascade).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.store.locks import LockSpace, lock_name
from podium.store.records import EndpointMemoryRecord
from podium.store.tables import EndpointMemoryRow, EndpointRow

_FIELDS = tuple(f for f in EndpointMemoryRecord.__dataclass_fields__ if f != "endpoint")


def _record(row: EndpointMemoryRow) -> EndpointMemoryRecord:
    return EndpointMemoryRecord(row.endpoint, **{f: getattr(row, f) for f in _FIELDS})


class EndpointMemoryRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def get(self, endpoint: str) -> EndpointMemoryRecord | None:
        """The endpoint's memory; None when the controller never wrote any."""
        stmt = select(EndpointMemoryRow).where(EndpointMemoryRow.endpoint == endpoint)
        row = self._s.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
        return None if row is None else _record(row)

    def put(self, record: EndpointMemoryRecord) -> bool:
        """Insert or replace the endpoint's memory; False (nothing written) when the
        endpoint no longer exists. Takes the endpoint's lock, so it cannot race its
        deletion."""
        lock_name(self._s, LockSpace.ENDPOINT, record.endpoint)
        if self._s.get(EndpointRow, record.endpoint) is None:
            return False
        values: dict[str, Any] = {**asdict(record), "updated_at": self._clock.now()}
        changes = {k: v for k, v in values.items() if k != "endpoint"}
        stmt: Insert
        if self._s.get_bind().dialect.name == "postgresql":
            pg = postgresql.insert(EndpointMemoryRow).values(values)
            stmt = pg.on_conflict_do_update(index_elements=["endpoint"], set_=changes)
        else:
            lite = sqlite.insert(EndpointMemoryRow).values(values)
            stmt = lite.on_conflict_do_update(index_elements=["endpoint"], set_=changes)
        self._s.execute(stmt)
        return True
