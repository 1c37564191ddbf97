"""The rows several server processes coordinate through (PostgreSQL only, issue 16).

`routing_state`: one row (`id` 1), the leading controller's routing table as JSON, whose
`version` grows by one at every store and whose `epoch` is the fencing number of the
leader that stored it. `gateway_reports`: one row per gateway process, its latest load
report as JSON, stamped with the database's clock (so no two machines' clocks are
compared). `podium.coordination` decides when to read and write them; this module only
says how.

Every statement of these repositories runs under `STATEMENT_TIMEOUT_MS` (`SET LOCAL`, once
per transaction): they run on threads that must notice a database that stopped answering
within seconds, not the engine's general limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

STATEMENT_TIMEOUT_MS = 5000

_LIMIT = text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
_STORE = text(
    "INSERT INTO routing_state (id, version, epoch, body, published_at) "
    "VALUES (1, 1, :epoch, :body, now()) "
    "ON CONFLICT (id) DO UPDATE SET version = routing_state.version + 1, "
    "epoch = excluded.epoch, body = excluded.body, published_at = excluded.published_at "
    "RETURNING version"
)
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_READ_STATE = text("SELECT version, epoch, body FROM routing_state WHERE id = 1")
_PUT_REPORT = text(
    "INSERT INTO gateway_reports (gateway_id, reported_at, body) VALUES (:id, now(), :body) "
    "ON CONFLICT (gateway_id) DO UPDATE SET reported_at = excluded.reported_at, "
    "body = excluded.body"
)
_DELETE_REPORT = text("DELETE FROM gateway_reports WHERE gateway_id = :id")
_READ_REPORTS = text(
    "SELECT gateway_id, body, reported_at > now() - make_interval(secs => :live) "
    "FROM gateway_reports"
)
_COUNT_OTHERS = text(
    "SELECT count(*) FROM gateway_reports "
    "WHERE gateway_id <> :id AND reported_at > now() - make_interval(secs => :live)"
)
_PRUNE = text(
    "DELETE FROM gateway_reports WHERE reported_at < now() - make_interval(secs => :older)"
)


@dataclass(frozen=True, slots=True)
class RoutingStateRecord:
    version: int
    epoch: int  # the fencing number of the leader that stored it
    body: str  # the table as JSON (`coordination.routing_codec`)


@dataclass(frozen=True, slots=True)
class GatewayReportRecord:
    gateway_id: str
    body: str  # the report as JSON (`coordination.load_codec`)
    fresh: bool  # reported within the `live_s` the reader asked about


class _Limited:
    """A repository whose statements run under `STATEMENT_TIMEOUT_MS` (module doc)."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._limited = False

    def _session(self) -> Session:
        if not self._limited:
            self._s.execute(_LIMIT)
            self._limited = True
        return self._s


class RoutingStateRepo(_Limited):
    def store(self, epoch: int, body: str, *, notify: str) -> int:
        """Store the table (the row's version + 1) and NOTIFY channel `notify` with the new
        version, which PostgreSQL delivers at commit. Returns the version."""
        s = self._session()
        version = int(s.execute(_STORE, {"epoch": epoch, "body": body}).scalar_one())
        s.execute(_NOTIFY, {"channel": notify, "payload": str(version)})
        return version

    def read(self) -> RoutingStateRecord | None:
        """The stored table; None before the first store."""
        row = self._session().execute(_READ_STATE).one_or_none()
        return None if row is None else RoutingStateRecord(int(row[0]), int(row[1]), str(row[2]))


class GatewayReportRepo(_Limited):
    def put(self, gateway_id: str, body: str) -> None:
        """Insert or replace the gateway's report, stamped now (the database's clock)."""
        self._session().execute(_PUT_REPORT, {"id": gateway_id, "body": body})

    def delete(self, gateway_id: str) -> None:
        self._session().execute(_DELETE_REPORT, {"id": gateway_id})

    def all(self, live_s: float) -> list[GatewayReportRecord]:
        """Every report, each saying whether it is younger than `live_s`."""
        rows = self._session().execute(_READ_REPORTS, {"live": live_s}).all()
        return [GatewayReportRecord(str(g), str(b), bool(f)) for g, b, f in rows]

    def count_live_others(self, gateway_id: str, live_s: float) -> int:
        """Gateways other than `gateway_id` that reported within `live_s`."""
        n = self._session().execute(_COUNT_OTHERS, {"id": gateway_id, "live": live_s})
        return int(n.scalar_one())

    def prune(self, older_than_s: float) -> int:
        """Delete reports older than `older_than_s`; returns how many."""
        result = self._session().execute(_PRUNE, {"older": older_than_s})
        return int(getattr(result, "rowcount", 0) or 0)
