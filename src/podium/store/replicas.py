"""Replica rows: what the controller remembers about each replica process it started, so a
restarted server can adopt the ones still alive. Observed state, not desired state."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Insert, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from podium.core.phases import ReplicaState
from podium.store.records import ReplicaRecord
from podium.store.tables import ReplicaRow


def _record(row: ReplicaRow) -> ReplicaRecord:
    return ReplicaRecord(
        replica_id=row.replica_id,
        endpoint=row.endpoint,
        revision=row.revision,
        state=ReplicaState(row.state),
        host=row.host,
        port=row.port,
        pid=row.pid,
        started_at=row.started_at,
        restarts=row.restarts,
        log_path=row.log_path,
    )


class ReplicaRepo:
    def __init__(self, session: Session) -> None:
        self._s = session

    def upsert(self, record: ReplicaRecord) -> None:
        """Insert the replica, or replace every field of the row with the same id."""
        values: dict[str, Any] = {
            "replica_id": record.replica_id,
            "endpoint": record.endpoint,
            "revision": record.revision,
            "state": record.state.value,
            "host": record.host,
            "port": record.port,
            "pid": record.pid,
            "started_at": record.started_at,
            "restarts": record.restarts,
            "log_path": record.log_path,
        }
        changes = {k: v for k, v in values.items() if k != "replica_id"}
        stmt: Insert
        if self._s.get_bind().dialect.name == "postgresql":
            pg = postgresql.insert(ReplicaRow).values(values)
            stmt = pg.on_conflict_do_update(index_elements=["replica_id"], set_=changes)
        else:
            lite = sqlite.insert(ReplicaRow).values(values)
            stmt = lite.on_conflict_do_update(index_elements=["replica_id"], set_=changes)
        self._s.execute(stmt)

    def list(self, endpoint: str | None = None) -> builtins.list[ReplicaRecord]:
        """Replica rows (of one endpoint, or all), ordered by endpoint and id."""
        stmt = select(ReplicaRow).order_by(ReplicaRow.endpoint, ReplicaRow.replica_id)
        if endpoint is not None:
            stmt = stmt.where(ReplicaRow.endpoint == endpoint)
        # The upsert bypasses the identity map: always read the rows as stored.
        stmt = stmt.execution_options(populate_existing=True)
        return [_record(r) for r in self._s.scalars(stmt)]

    def delete(self, replica_id: str) -> None:
        """Forget a replica; nothing happens when there is no such row."""
        self._s.execute(delete(ReplicaRow).where(ReplicaRow.replica_id == replica_id))
