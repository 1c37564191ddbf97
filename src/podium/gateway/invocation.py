"""One invocation as the pipeline's stages see it, and what the gateway learns on its way.

The pipeline makes an `Invocation` only when the gateway has stages (access control, the
request record); with none, nothing here is allocated and the pipeline and the proxy skip
every step that fills it (`call is None`). Along the way they note, as plain attributes:

    replica_id, revision   the replica the request was last sent to
    queue_s                seconds held by the activator waiting for a replica slot
    upstream_start/_end    perf_counter readings: sent to the replica, its last byte relayed
                           (or the attempt failing)
    head_sent              perf_counter when the replica's response head went to the client
    first_token            perf_counter of a stream's first `data:` event (not `[DONE]`)
    status_sent            the replica's status as sent to the client (kept when the
                           client leaves mid-answer, when the pipeline's status is 0)
    events, done           a stream's `data:` lines so far, and its `data: [DONE]` lines
    streamed               the answer was `text/event-stream`
    bytes_out              response body bytes relayed to the client
    body                   the request body (bytes, or the `StreamedBody` read while sent)
    answer                 a whole answer's body (for OpenAI `usage`), or the last stream
                           chunk that mentioned `"usage"`
    error                  why it failed, where the gateway answered or saw it
                           (`core.request_record.ErrorClass`)
    capture                payload capture: max bytes kept of each body (0: none), and
                           `captured`, the response's first bytes when it streams
    received_at            unix seconds the request was received (the recording stage)

Times are `time.perf_counter()` readings, comparable with `started`.
"""

from __future__ import annotations

from typing import Any

from podium.core.request_record import ErrorClass
from podium.core.routing import EndpointRoute
from podium.gateway.body import StreamedBody
from podium.gateway.headers import RequestHead
from podium.gateway.responses import Scope

# A stream event's line, OpenAI's end marker, and how many bytes of the stream so far are
# kept to find either when a chunk boundary splits it (one less than each: a marker whole
# in the kept bytes was counted with the chunk before).
_DATA = b"\ndata:"
_DONE = b"data: [DONE]"
_USAGE = b'"usage"'
_DATA_CARRY = len(_DATA) - 1
_DONE_CARRY = len(_DONE) - 1


class Invocation:
    """One request through the pipeline (module docstring). `state` is a dict a stage may
    use to pass what it learnt in `check` to `finish`."""

    __slots__ = (
        "answer",
        "body",
        "bytes_out",
        "capture",
        "captured",
        "done",
        "error",
        "events",
        "first_token",
        "head",
        "head_sent",
        "queue_s",
        "received_at",
        "replica_id",
        "revision",
        "route",
        "scope",
        "started",
        "state",
        "status_sent",
        "streamed",
        "tail",
        "target",
        "upstream_end",
        "upstream_start",
    )

    def __init__(
        self, route: EndpointRoute, scope: Scope, head: RequestHead, target: str, started: float
    ) -> None:
        self.route = route
        self.scope = scope
        self.head = head
        self.target = target
        self.started = started
        self.state: dict[str, Any] = {}
        self.received_at = 0.0  # unix seconds (the recording stage notes it)
        self.replica_id: str | None = None
        self.revision: int | None = None
        self.queue_s = 0.0
        self.upstream_start = 0.0
        self.upstream_end = 0.0
        self.head_sent = 0.0
        self.first_token = 0.0
        self.status_sent = 0
        self.events = 0
        self.done = 0
        self.streamed = False
        self.bytes_out = 0
        self.body: bytes | StreamedBody | None = None
        self.answer: bytes | None = None
        self.error: ErrorClass | None = None
        self.capture = 0
        self.captured: bytearray | None = None
        self.tail = b"\n"  # the end of the stream so far (a line starts the stream)

    def fail(self, error: ErrorClass) -> None:
        """Note why it failed (the first reason noted wins: later ones follow from it)."""
        if self.error is None:
            self.error = error

    def relayed(self, chunk: bytes, now: float) -> None:
        """A chunk of a streamed answer went to the client: count it (and its events)."""
        self.bytes_out += len(chunk)
        captured = self.captured
        if captured is not None and len(captured) < self.capture:
            captured += chunk[: self.capture - len(captured)]
        if not self.streamed:
            return
        tail = self.tail
        seen = tail + chunk
        self.events += seen.count(_DATA, max(0, len(tail) - _DATA_CARRY))
        self.done += seen.count(_DONE)
        if not self.first_token and self.events > self.done:
            self.first_token = now
        self.tail = seen[-_DONE_CARRY:]
        if _USAGE in chunk:
            self.answer = chunk

    @property
    def tokens(self) -> int:
        """A stream's data events so far, `[DONE]` excepted."""
        return max(0, self.events - self.done)
