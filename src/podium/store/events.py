"""The event log of each endpoint: an append-only, id-ordered stream of what happened.

Followers page with `list(endpoint, after_id=last_seen)`. On PostgreSQL the endpoint's lock
(see `locks`) is held from `add` to commit, so ids of one endpoint become visible in order
and a follower never skips an event.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from podium.core.clock import Clock, SystemClock
from podium.core.errors import Invalid
from podium.core.phases import EventKind
from podium.store.locks import LockSpace, lock_name
from podium.store.records import EventRecord
from podium.store.tables import EventRow

MAX_PAGE = 5000


def _record(row: EventRow) -> EventRecord:
    return EventRecord(
        id=row.id,
        endpoint=row.endpoint,
        at=row.at,
        kind=EventKind(row.kind),
        message=row.message,
        data=dict(row.data),
    )


class EventRepo:
    def __init__(self, session: Session, clock: Clock | None = None) -> None:
        self._s = session
        self._clock = clock or SystemClock()

    def add(
        self,
        endpoint: str,
        kind: EventKind,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> EventRecord:
        lock_name(self._s, LockSpace.ENDPOINT, endpoint)
        row = EventRow(
            endpoint=endpoint,
            at=self._clock.now(),
            kind=kind.value,
            message=message,
            data=dict(data or {}),
        )
        self._s.add(row)
        self._s.flush()
        return _record(row)

    def list(
        self, endpoint: str, *, after_id: int = 0, limit: int = 500, newest: bool = False
    ) -> builtins.list[EventRecord]:
        """Up to `limit` events of `endpoint` with id > `after_id`, oldest first: the
        first `limit` of them, or with `newest` the last `limit` (a page that opens on
        the latest events without reading the whole history, then follows with after)."""
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}, not {limit}", field="limit")
        order = EventRow.id.desc() if newest else EventRow.id
        stmt = (
            select(EventRow)
            .where(EventRow.endpoint == endpoint, EventRow.id > after_id)
            .order_by(order)
            .limit(limit)
        )
        records = [_record(r) for r in self._s.scalars(stmt)]
        return records[::-1] if newest else records

    def newest(self, endpoint: str, kind: EventKind, limit: int) -> builtins.list[EventRecord]:
        """The newest `limit` events of one kind of `endpoint`, newest first."""
        stmt = (
            select(EventRow)
            .where(EventRow.endpoint == endpoint, EventRow.kind == kind.value)
            .order_by(EventRow.id.desc())
            .limit(limit)
        )
        return [_record(r) for r in self._s.scalars(stmt)]

    def between(
        self,
        endpoint: str,
        kinds: Iterable[EventKind],
        since: datetime,
        until: datetime,
        limit: int = 500,
    ) -> builtins.list[EventRecord]:
        """Up to `limit` events of these kinds with `since` <= at < `until`, oldest first
        (the metrics history shows them on its graphs)."""
        stmt = (
            select(EventRow)
            .where(
                EventRow.endpoint == endpoint,
                EventRow.kind.in_([k.value for k in kinds]),
                EventRow.at >= since,
                EventRow.at < until,
            )
            .order_by(EventRow.id)
            .limit(limit)
        )
        return [_record(r) for r in self._s.scalars(stmt)]

    def delete_for(self, endpoint: str) -> None:
        """Remove every event of `endpoint`."""
        self._s.execute(delete(EventRow).where(EventRow.endpoint == endpoint))
