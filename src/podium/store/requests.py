"""Request records: one row per invocation, written in batches by the server's writer
thread (`server.recorder`), read a page at a time by the API, pruned by age and by count.

`insert_rows` is the hot part: it runs thousands of rows a second on the writer thread
while the gateway's event loop shares the GIL. The rows come as the gateway built them
(`core.request_record.Row`: plain tuples in `COLUMNS` order, clamped) and go to the driver
as they are (`exec_driver_sql`): no ORM objects, no per-row SQLAlchemy bind processing.
They are inserted `ROWS_PER_STATEMENT` at a time as one multi-row statement
(`INSERT … VALUES (…), (…), …`), on SQLite and PostgreSQL alike, all in the caller's one
transaction. Why not `executemany`: SQLite's module releases the GIL around every row's
step and takes it back after, so a writer thread inserting row by row next to a busy event
loop waits for the GIL once per row (up to the 5 ms switch interval): 50,000 rows took
209 s that way against ~1.3 s in statements of hundreds of rows. One statement is one step.
`insert_many` is the same for typed records (`RequestRecord.row()`).

Pages follow `id` (autoincrement, never reused): newest first below a cursor (`before`),
or oldest first above the newest id a follower has seen (`after`). `born_at` hides the
records of an earlier endpoint of the same name: records of a deleted endpoint are kept
until pruned (they are history), and the API passes the current endpoint's `created_at`,
so a re-created endpoint starts with none.

`prune` deletes at most `batch` rows per call (one short transaction: SQLite has one
writer lock, and the gateway's records, the controller and the API all need it); the
writer calls it in a loop of units of work until it returns less than `batch`.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.core.errors import Invalid
from podium.core.record_schemas import StatusClass
from podium.core.request_record import COLUMNS, ErrorClass, Protocol, RequestRecord, Row
from podium.store.tables import RequestRecordRow

MAX_PAGE = 5000  # rows one `page` call returns at most (the API's CSV pages through)
PRUNE_BATCH = 5000  # rows one `prune` call deletes at most

_T = cast(Table, RequestRecordRow.__table__)
_C = _T.c
_PAYLOADS = ("request_body", "response_body")
_LIGHT = [c for c in _C if c.name not in _PAYLOADS]  # every column but the payloads
# The columns `insert_rows` writes, in the order of its rows (a unit test checks that this
# is every column but `id`, in the table's order, so the two cannot drift apart).
INSERT_COLUMNS: tuple[str, ...] = COLUMNS
# Rows per INSERT statement: 26 parameters each, 5,200 in all, under SQLite's 32,766 (since
# 3.32) and PostgreSQL's 65,535; small enough that binding one statement holds the GIL
# briefly (the event loop waits for it meanwhile).
ROWS_PER_STATEMENT = 200


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """What `page` and `count` keep (None: no condition). `since` inclusive, `until`
    exclusive, both unix seconds on `received_at`."""

    status: StatusClass | None = None
    min_latency_ms: float | None = None
    since: float | None = None
    until: float | None = None
    replica: str | None = None
    revision: int | None = None
    request_id: str | None = None
    task_id: str | None = None  # the calls that ran this async task (each attempt one)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as stored: `id` is its place in the order of writing (the cursor)."""

    id: int
    record: RequestRecord


class RequestRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    # ------------------------------------------------------------------ writing

    def insert_many(self, records: Sequence[RequestRecord]) -> int:
        """Insert `records` (`insert_rows` of their rows); returns how many."""
        return self.insert_rows([r.row() for r in records])

    def insert_rows(self, rows: Sequence[Row]) -> int:
        """Insert `rows` (`core.request_record.Row`, as the gateway offers them), in
        multi-row statements of at most `ROWS_PER_STATEMENT`; returns how many."""
        if not rows:
            return 0
        connection = self._s.connection()
        paramstyle = connection.dialect.paramstyle
        full = _insert_sql(paramstyle, ROWS_PER_STATEMENT)
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            sql = full if len(chunk) == ROWS_PER_STATEMENT else _insert_sql(paramstyle, len(chunk))
            connection.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
        return len(rows)

    # ------------------------------------------------------------------ reading

    def page(
        self,
        endpoint: str,
        filters: RecordFilter | None = None,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 100,
        born_at: float | None = None,
        payloads: bool = False,
    ) -> builtins.list[StoredRecord]:
        """Up to `limit` records of `endpoint` (its key) matching `filters`: newest first
        with ids below `before` (None: from the newest), or, with `after`, oldest first
        with ids above it (a follower's next records). `born_at`: only records received
        since then (the endpoint's creation). Payload columns are read only with
        `payloads` (they may be large); otherwise they are None."""
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}, not {limit}", field="limit")
        if before is not None and after is not None:
            raise Invalid("give a cursor or after, not both", field="cursor")
        columns = list(_C) if payloads else _LIGHT
        stmt: Select[Any] = select(*columns).where(*_conditions(endpoint, filters, born_at))
        if after is not None:
            stmt = stmt.where(_C.id > after).order_by(_C.id)
        else:
            if before is not None:
                stmt = stmt.where(_C.id < before)
            stmt = stmt.order_by(_C.id.desc())
        return [_stored(row._mapping) for row in self._s.execute(stmt.limit(limit))]

    def count(
        self, endpoint: str, filters: RecordFilter | None = None, *, born_at: float | None = None
    ) -> int:
        """How many records of `endpoint` match `filters`."""
        stmt = select(func.count()).select_from(_T).where(*_conditions(endpoint, filters, born_at))
        return int(self._s.scalar(stmt) or 0)

    def newest_id(self) -> int:
        """The largest id written (0 when there is none)."""
        return int(self._s.scalar(select(func.max(_C.id))) or 0)

    # ------------------------------------------------------------------ retention

    def prune(
        self, now: float, max_age_s: float, max_rows: int, *, batch: int = PRUNE_BATCH
    ) -> int:
        """Delete at most `batch` records: those received before `now - max_age_s` first,
        then the oldest beyond the newest `max_rows` (every endpoint together). Returns how
        many; less than `batch` means nothing is left to prune."""
        deleted = self._delete_ids(_C.received_at < now - max_age_s, batch)
        if deleted < batch:
            # The id of the newest record past the `max_rows` newest: it and older go.
            edge = self._s.scalar(select(_C.id).order_by(_C.id.desc()).offset(max_rows).limit(1))
            if edge is not None:
                deleted += self._delete_ids(_C.id <= edge, batch - deleted)
        return deleted

    def _delete_ids(self, condition: ColumnElement[bool], limit: int) -> int:
        """Delete the `limit` lowest ids meeting `condition` (a bounded DELETE that both
        SQLite and PostgreSQL run: neither has DELETE … LIMIT in common)."""
        chosen = select(_C.id).where(condition).order_by(_C.id).limit(limit).scalar_subquery()
        result = self._s.execute(delete(_T).where(_C.id.in_(chosen)))
        return int(getattr(result, "rowcount", 0) or 0)


@functools.lru_cache(maxsize=64)
def _insert_sql(paramstyle: str, rows: int) -> str:
    """The driver's own INSERT of `rows` rows of `INSERT_COLUMNS` (`?` for sqlite3, `%s`
    for psycopg)."""
    if paramstyle not in ("qmark", "format", "pyformat"):
        raise ValueError(f"no positional parameters in paramstyle {paramstyle!r}")
    mark = "?" if paramstyle == "qmark" else "%s"
    names = ", ".join(INSERT_COLUMNS)
    values = "(" + ", ".join([mark] * len(INSERT_COLUMNS)) + ")"
    return f"INSERT INTO {_T.name} ({names}) VALUES {', '.join([values] * rows)}"


def _conditions(
    endpoint: str, filters: RecordFilter | None, born_at: float | None
) -> builtins.list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [_C.endpoint == endpoint]
    if born_at is not None:
        out.append(_C.received_at >= born_at)
    if filters is None:
        return out
    if filters.status is not None:
        out.append(_status(filters.status))
    if filters.min_latency_ms is not None:
        out.append(_C.latency_ms >= filters.min_latency_ms)
    if filters.since is not None:
        out.append(_C.received_at >= filters.since)
    if filters.until is not None:
        out.append(_C.received_at < filters.until)
    if filters.replica is not None:
        out.append(_C.replica_id == filters.replica)
    if filters.revision is not None:
        out.append(_C.revision == filters.revision)
    if filters.request_id is not None:
        out.append(_C.request_id == filters.request_id)
    if filters.task_id is not None:
        out.append(_C.task_id == filters.task_id)
    return out


def _status(status: StatusClass) -> ColumnElement[bool]:
    """A status class; `2xx` and `3xx` are answers that ended well: a stream sent with 200
    that the client cancelled or the replica cut has an error class, so it is in `error`,
    not in `2xx`."""
    if status is StatusClass.ERROR:
        return or_(_C.status == 0, _C.status >= 400, _C.error.is_not(None))
    low = {
        StatusClass.S2XX: 200,
        StatusClass.S3XX: 300,
        StatusClass.S4XX: 400,
        StatusClass.S5XX: 500,
    }[status]
    in_class = and_(_C.status >= low, _C.status < low + 100)
    return and_(in_class, _C.error.is_(None)) if low < 400 else in_class


def _stored(row: Any) -> StoredRecord:
    error = row["error"]
    return StoredRecord(
        id=row["id"],
        record=RequestRecord(
            request_id=row["request_id"],
            endpoint=row["endpoint"],
            project=row["project"],
            protocol=Protocol(row["protocol"]),
            route=row["route"],
            method=row["method"],
            status=row["status"],
            received_at=row["received_at"],
            latency_ms=row["latency_ms"],
            queue_ms=row["queue_ms"],
            revision=row["revision"],
            replica_id=row["replica_id"],
            error=None if error is None else ErrorClass(error),
            upstream_ms=row["upstream_ms"],
            ttfb_ms=row["ttfb_ms"],
            ttft_ms=row["ttft_ms"],
            tokens_in=row["tokens_in"],
            tokens_out=row["tokens_out"],
            streamed=bool(row["streamed"]),
            bytes_in=row["bytes_in"],
            bytes_out=row["bytes_out"],
            client=row["client"],
            user_agent=row["user_agent"],
            token_id=row["token_id"],
            task_id=row["task_id"],
            request_body=row.get("request_body"),
            response_body=row.get("response_body"),
        ),
    )
