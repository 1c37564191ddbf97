"""The request record: one per invocation of an endpoint, written off the gateway's hot path.

The gateway's recording stage (`gateway.recording`) builds a `RequestRecord` when an
invocation finishes and `offer`s it to a `RecordBuffer`; the server's writer thread
(`server.recorder`) `drain`s the buffer in batches into the store (`store.requests`). The
buffer is bounded: a record offered to a full buffer is dropped and counted (`dropped`),
never silently lost (the count is on `/metrics` and in `podium top`).

Times are floats: `received_at` is unix seconds, durations are milliseconds (None where the
step did not happen, e.g. no upstream time for a request refused before it was forwarded).

What the buffer carries is a record's *row* (`Row`), not the `RequestRecord`: a plain tuple
of atomic values (str, int, float, bool, None; the enums as their `.value`) in `COLUMNS`
order, the table's column order, texts already clamped to their columns. Why: records wait
in the buffer up to `flush_s`, thousands of them under load; objects that survive that long
reach the garbage collector's oldest generation and make it run full collections of the
whole process. A tuple of atomic values is untracked by CPython's collector at its first
young collection, so buffered rows cost the collector nothing; and the writer inserts them
as they are (`store.requests.RequestRepo.insert_rows`), with no conversion. The gateway
builds rows positionally (`gateway.recording`); `RequestRecord` stays the typed view of
one, for everything else (`RequestRecord.row()` and `RequestRecord.from_row()`).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Protocol(StrEnum):
    """Which API of the replica a request used (from its path)."""

    HF = "hf"  # /endpoints/{name}/ (the Hugging Face style routes, `/predict`, …)
    OPENAI = "openai"  # /v1/… through the router, or /endpoints/{name}/v1/…
    V2 = "v2"  # the Open Inference Protocol, /endpoints/{name}/v2/…
    COMMAND = "command"  # any path of a `command` or preset server


class ErrorClass(StrEnum):
    """Why an invocation failed, when it did (`RequestRecord.error`); None when it did not.

    A replica's own 4xx/5xx answer is `replica_4xx` / `replica_5xx`; every other value names
    what the gateway itself answered or saw."""

    UNAUTHENTICATED = "unauthenticated"  # 401
    FORBIDDEN = "forbidden"  # 403
    RATE_LIMITED = "rate_limited"  # 429
    TOO_LARGE = "too_large"  # 413: the request body was over the limit
    BAD_REQUEST = "bad_request"  # 400 from the gateway (a bad header, a bad /v1 body)
    PAUSED = "paused"  # the endpoint is paused or failed with nothing ready
    QUEUE_FULL = "queue_full"  # held requests over the endpoint's limit (503)
    QUEUE_TIMEOUT = "queue_timeout"  # held past its wait timeout (504)
    NO_REPLICA = "no_replica"  # no replica could be reached (502)
    REPLICA_CRASHED = "replica_crashed"  # the replica died serving it (502)
    REPLICA_CLOSED = "replica_closed"  # the replica closed the connection unanswered (502)
    UPSTREAM_TIMEOUT = "upstream_timeout"  # the replica did not answer in time (504)
    BAD_UPSTREAM = "bad_upstream"  # the replica's answer was malformed (502)
    UPSTREAM_CUT = "upstream_cut"  # the replica broke off mid-answer (the client's cut too)
    CLIENT_GONE = "client_gone"  # the client left first (a cancelled stream included)
    REPLICA_4XX = "replica_4xx"
    REPLICA_5XX = "replica_5xx"


# The columns of a row (`store.tables.RequestRecordRow`'s, in its order, but `id`).
COLUMNS: tuple[str, ...] = (
    "request_id", "endpoint", "project", "protocol", "route", "method", "status", "error",
    "received_at", "latency_ms", "queue_ms", "revision", "replica_id", "upstream_ms",
    "ttfb_ms", "ttft_ms", "tokens_in", "tokens_out", "streamed", "bytes_in", "bytes_out",
    "client", "user_agent", "token_id", "request_body", "response_body", "task_id",
)  # fmt: skip
# Texts longer than their column are cut to it (a too-long value would fail a whole batch
# on PostgreSQL). The gateway clamps what it takes from the request; `row()` clamps all.
MAX_REQUEST_ID = 128
MAX_ROUTE = 256
MAX_METHOD = 16
MAX_REPLICA_ID = 128
MAX_CLIENT = 64
MAX_USER_AGENT = 256
MAX_TOKEN_ID = 16

Row = tuple[Any, ...]  # a record as the buffer carries it: atomic values in COLUMNS order
_REQ, _RESP = COLUMNS.index("request_body"), COLUMNS.index("response_body")


@dataclass(slots=True)
class RequestRecord:
    """One invocation, as stored (`store.tables.RequestRecordRow` has the same columns)."""

    request_id: str
    endpoint: str  # the endpoint's key (`core.access.endpoint_key`)
    project: str
    protocol: Protocol
    route: str  # the replica path without its query, at most 256 characters
    method: str
    status: int  # 0: the client left before any response
    received_at: float  # unix seconds
    latency_ms: float  # received to the last byte sent (or the client gone)
    queue_ms: float = 0.0  # held by the activator waiting for a replica slot
    revision: int | None = None
    replica_id: str | None = None
    error: ErrorClass | None = None
    upstream_ms: float | None = None  # sent to the replica to its last byte
    ttfb_ms: float | None = None  # received to the response head sent to the client
    ttft_ms: float | None = None  # streams: received to the first event with data
    tokens_in: int | None = None  # where the replica reports them (OpenAI `usage`)
    tokens_out: int | None = None  # streams: data events; else OpenAI `usage`
    streamed: bool = False  # the answer was a stream (text/event-stream)
    bytes_in: int = 0  # the request body
    bytes_out: int = 0  # the response body
    client: str | None = None  # the client's address
    user_agent: str | None = None  # at most 256 characters
    token_id: str | None = None  # the caller's token (None: anonymous or a public endpoint)
    request_body: str | None = None  # payload capture, when the endpoint samples it
    response_body: str | None = None
    task_id: str | None = None  # the async task this invocation ran (issue 13)

    def row(self) -> Row:
        """This record as a row (`COLUMNS` order, enums as values, texts clamped)."""
        error = self.error
        replica_id, client = self.replica_id, self.client
        user_agent, token_id = self.user_agent, self.token_id
        return (
            self.request_id[:MAX_REQUEST_ID],
            self.endpoint,
            self.project,
            self.protocol.value,
            self.route[:MAX_ROUTE],
            self.method[:MAX_METHOD],
            self.status,
            None if error is None else error.value,
            self.received_at,
            self.latency_ms,
            self.queue_ms,
            self.revision,
            None if replica_id is None else replica_id[:MAX_REPLICA_ID],
            self.upstream_ms,
            self.ttfb_ms,
            self.ttft_ms,
            self.tokens_in,
            self.tokens_out,
            self.streamed,
            self.bytes_in,
            self.bytes_out,
            None if client is None else client[:MAX_CLIENT],
            None if user_agent is None else user_agent[:MAX_USER_AGENT],
            None if token_id is None else token_id[:MAX_TOKEN_ID],
            self.request_body,
            self.response_body,
            self.task_id,
        )

    @classmethod
    def from_row(cls, row: Row) -> RequestRecord:
        """The record a row holds (the inverse of `row()` for texts within their limits)."""
        (request_id, endpoint, project, protocol, route, method, status, error, received_at,
         latency_ms, queue_ms, revision, replica_id, upstream_ms, ttfb_ms, ttft_ms, tokens_in,
         tokens_out, streamed, bytes_in, bytes_out, client, user_agent, token_id,
         request_body, response_body, task_id) = row  # fmt: skip
        return cls(
            request_id=request_id,
            endpoint=endpoint,
            project=project,
            protocol=Protocol(protocol),
            route=route,
            method=method,
            status=status,
            received_at=received_at,
            latency_ms=latency_ms,
            queue_ms=queue_ms,
            revision=revision,
            replica_id=replica_id,
            error=None if error is None else ErrorClass(error),
            upstream_ms=upstream_ms,
            ttfb_ms=ttfb_ms,
            ttft_ms=ttft_ms,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            streamed=bool(streamed),
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            client=client,
            user_agent=user_agent,
            token_id=token_id,
            request_body=request_body,
            response_body=response_body,
            task_id=task_id,
        )


class RecordBuffer:
    """A bounded queue of records' rows (`Row`) between the event loop (`offer`) and the
    writer thread (`drain`). `offer` never blocks: past `capacity` the row is dropped and
    counted."""

    def __init__(self, capacity: int, payload_bytes: int = 64 * 2**20) -> None:
        self.capacity = capacity
        self._items: deque[Row] = deque()
        self.offered = 0  # every record offered, kept or dropped
        self.dropped = 0  # records refused because the buffer was full
        self.lost = 0  # records the writer took but could not store (it counts them here)
        # Captured payloads are bounded in bytes, not only in records: a stalled store with
        # `sample: 1` would otherwise hold capacity x 2 x max_bytes in the server's memory.
        self.payload_budget = payload_bytes
        self.payload_bytes = 0  # captured bytes now waiting (reserved by the stage)
        self.payloads_refused = 0  # captures not stored because the budget was spent
        self._payload_lock = threading.Lock()  # the stage adds, the writer's thread returns

    def offer(self, record: Row) -> bool:
        """Keep `record` (a row) for the writer; False (and counted) when the buffer is
        full."""
        self.offered += 1
        items = self._items
        if len(items) >= self.capacity:
            self.dropped += 1
            return False
        items.append(record)  # deque.append is atomic: no lock on the hot path
        return True

    def drain(self, limit: int) -> list[Row]:
        """Up to `limit` rows, oldest first (the writer's thread); their captured bytes
        go back to the payload budget."""
        items = self._items
        out: list[Row] = []
        while items and len(out) < limit:
            out.append(items.popleft())
        if self.payload_bytes:
            self.release_payload(sum(len(r[_REQ] or "") + len(r[_RESP] or "") for r in out))
        return out

    def reserve_payload(self, size: int) -> bool:
        """Room for `size` captured characters (the stage, before it offers a row with
        payloads); False, and counted, when the budget is spent: store the record without
        its payloads."""
        with self._payload_lock:
            if self.payload_bytes + size > self.payload_budget:
                self.payloads_refused += 1
                return False
            self.payload_bytes += size
            return True

    def release_payload(self, size: int) -> None:
        with self._payload_lock:
            self.payload_bytes = max(0, self.payload_bytes - size)

    def __len__(self) -> int:
        return len(self._items)
