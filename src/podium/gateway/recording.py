"""The recording stage: one request record per invocation (`core.request_record`).

`RecordStage` is a pipeline `Stage` the gateway runs first when it is given a
`RecordBuffer` (`Gateway(..., records=buffer)`), so the refusals of the stages after it
(401, 403, 429) are recorded too. `check` notes when the request was received (unix time)
and whether its payload is captured (`route.capture`: `random() < sample`); `finish` builds
the record's row (`core.request_record.Row`: a plain tuple in `COLUMNS` order, enums as
their values, texts clamped; positional, the cheapest build on this path) from what the
pipeline and the proxy noted on the `Invocation` and offers it to the buffer, which never
blocks (a full buffer drops and counts it). `finish` never raises.

How each field is measured (durations in ms from the pipeline's start, `perf_counter`):
latency = the pipeline's own measure (as metered); queue = time in the activator;
upstream = sent to the replica to its last byte relayed; ttfb = the response head sent
(the gateway's own answers: head and body go together, so ttfb = latency); ttft = a
stream's first `data:` event; tokens out = a stream's `data:` events (`[DONE]` excepted),
or OpenAI `usage.completion_tokens` when the answer reports it (it wins); tokens in =
`usage.prompt_tokens`; bytes in = the request body read; bytes out = the replica's body
relayed. Requests for no known endpoint (404s of unknown paths, `/v1/` requests whose
`model` names none, a `/v1/` body too large or not JSON) have no endpoint and no record.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from podium.core.access import NOBODY_CHECKS, PRINCIPAL_KEY, Principal
from podium.core.observability_spec import CaptureSpec
from podium.core.request_record import (
    MAX_CLIENT,
    MAX_METHOD,
    MAX_ROUTE,
    MAX_USER_AGENT,
    ErrorClass,
    Protocol,
    RecordBuffer,
    Row,
)
from podium.core.tasks import TASK_KEY
from podium.gateway.activator import Refusal
from podium.gateway.body import StreamedBody
from podium.gateway.capture import captured
from podium.gateway.invocation import Invocation
from podium.runtimes.presets import EXTERNAL_FRAMEWORKS

log = logging.getLogger("podium.gateway")

PRINCIPAL = PRINCIPAL_KEY  # where the access stage leaves the caller in the scope
# A dispatched task's call (`scope[TASK_KEY]` set): the seconds the task waited in the queue
# for this attempt, counted in its record's `queue_ms` (`gateway.tasks`).
TASK_WAIT = "podium.task_wait_s"
_USER_AGENT = b"user-agent"
MAX_TOKENS = 2**31 - 1
NO_ROOM = "[not stored: the capture buffer is full]"
_USAGE = b'"usage"'
_DATA = b"data:"
# The protocols' values (a row holds values, not enum members: `core.request_record`).
_OPENAI = Protocol.OPENAI.value
_V2 = Protocol.V2.value
_COMMAND = Protocol.COMMAND.value
_HF = Protocol.HF.value

# A gateway answer with no error noted on the way, by status (a defensive fallback).
_BY_STATUS = {
    400: ErrorClass.BAD_REQUEST,
    401: ErrorClass.UNAUTHENTICATED,
    403: ErrorClass.FORBIDDEN,
    413: ErrorClass.TOO_LARGE,
    429: ErrorClass.RATE_LIMITED,
    502: ErrorClass.NO_REPLICA,
    503: ErrorClass.QUEUE_FULL,
    504: ErrorClass.QUEUE_TIMEOUT,
}


class RecordStage(Collector):
    """The request record stage (module docstring). `failed` counts records that could
    not be built (a bug, logged; `podium_gateway_record_failures_total`); `random` is the
    capture sampler (tests pin it)."""

    def __init__(
        self, buffer: RecordBuffer, *, random: Callable[[], float] = random.random
    ) -> None:
        self._buffer = buffer
        self._random = random
        self.failed = 0

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        failures = CounterMetricFamily(
            "podium_gateway_record_failures",
            "Invocations whose request record could not be built (a bug; each is logged).",
        )
        failures.add_metric([], self.failed)
        return [failures]

    async def check(self, call: Invocation) -> Refusal | None:
        call.received_at = time.time()
        capture = call.route.capture
        if capture is not None and capture.sample > 0 and self._random() < capture.sample:
            call.capture = capture.max_bytes
            call.captured = bytearray()
        return None

    def finish(self, call: Invocation, status: int, seconds: float) -> None:
        try:
            row = self.record(call, status, seconds)
        except Exception:
            self.failed += 1
            log.exception("could not build the request record of %s", call.head.request_id)
            return
        self._buffer.offer(row)

    def record(self, call: Invocation, status: int, seconds: float) -> Row:
        """The record (its row) of a finished invocation (`status` 0: the client left)."""
        route = call.route
        path = call.target
        if "?" in path:
            path = path.partition("?")[0]
        if len(path) > MAX_ROUTE:
            path = path[:MAX_ROUTE]
        if path.startswith("/v1/"):
            protocol = _OPENAI
        elif path.startswith("/v2/"):
            protocol = _V2
        elif route.framework in EXTERNAL_FRAMEWORKS:
            protocol = _COMMAND
        else:
            protocol = _HF
        status_sent = call.status_sent
        error = call.error
        if error is None and (status >= 400 or not status or status_sent >= 400):
            error = _error_of(status, status_sent)
        started = call.started
        latency_ms = seconds * 1000.0
        head_sent = call.head_sent
        if head_sent:
            ttfb_ms: float | None = (head_sent - started) * 1000.0
        else:  # the gateway's own answer: head and body together
            ttfb_ms = latency_ms if status else None
        upstream_end = call.upstream_end
        upstream_ms = (upstream_end - call.upstream_start) * 1000.0 if upstream_end else None
        streamed = call.streamed
        tokens_in = None
        tokens_out = call.tokens if streamed else None
        answer = call.answer
        if answer is not None and protocol == _OPENAI and _USAGE in answer:
            usage = _usage(answer, streamed)
            if usage is not None:
                tokens_in, completion = usage
                if completion is not None:
                    tokens_out = completion
        body = call.body
        if body is None:
            bytes_in = 0
        elif body.__class__ is bytes:
            bytes_in = len(body)
        else:
            bytes_in = body.size if isinstance(body, StreamedBody) else len(body)
        scope = call.scope
        client = scope.get("client")
        user_agent = None
        for name, value in scope["headers"]:
            if name == _USER_AGENT:
                user_agent = value[:MAX_USER_AGENT].decode("latin-1")
                break
        who = scope.get(PRINCIPAL)
        token_id = who.token_id if isinstance(who, Principal) and who is not NOBODY_CHECKS else None
        queue_s = call.queue_s
        task_id = scope.get(TASK_KEY)  # set by the task dispatcher for the calls it makes
        if task_id is not None:
            queue_s += scope.get(TASK_WAIT, 0.0)
        request_body = response_body = None
        if call.capture:
            request_body, response_body = _payloads(call)
            size = len(request_body or "") + len(response_body or "")
            if size and not self._buffer.reserve_payload(size):
                request_body = response_body = NO_ROOM  # the record itself is kept
        # `COLUMNS` order (checked by a test); the request id is at most 128 characters
        # (`headers`), the replica id and token id are the server's own.
        return (
            call.head.request_id,
            route.name,
            route.project,
            protocol,
            path,
            scope["method"][:MAX_METHOD],
            status or status_sent,  # a client that left mid-answer saw this status
            None if error is None else error.value,
            call.received_at,
            latency_ms,
            queue_s * 1000.0,
            call.revision,
            call.replica_id,
            upstream_ms,
            ttfb_ms,
            (call.first_token - started) * 1000.0 if call.first_token else None,
            tokens_in,
            tokens_out,
            streamed,
            bytes_in,
            call.bytes_out,
            client[0][:MAX_CLIENT] if client else None,
            user_agent,
            token_id,
            request_body,
            response_body,
            task_id,
        )


def _error_of(status: int, status_sent: int) -> ErrorClass:
    """The error class of a request nothing on the way classified."""
    if not status:
        return ErrorClass.CLIENT_GONE
    if status_sent >= 500:
        return ErrorClass.REPLICA_5XX
    if status_sent >= 400:
        return ErrorClass.REPLICA_4XX
    return _BY_STATUS.get(status, ErrorClass.BAD_REQUEST)  # a gateway answer (a fallback)


def _payloads(call: Invocation) -> tuple[str | None, str | None]:
    """The captured request and response bodies (`capture`)."""
    spec = call.route.capture
    if spec is None:
        return None, None
    request = _request_capture(call.body, spec)
    if call.captured:  # an answer relayed chunk by chunk: its first bytes
        out = bytes(call.captured)
    else:  # a whole answer (a stream's `answer` is only its `usage` chunk)
        answer = call.answer
        out = answer if answer is not None and not call.streamed else b""
    response = captured(out, call.bytes_out, spec) if call.head_sent else None
    return request, response


def _usage(answer: bytes, streamed: bool) -> tuple[int | None, int | None] | None:
    """(prompt_tokens, completion_tokens) of OpenAI's `usage`: in a whole JSON answer, or
    in the last event of a stream chunk that carries it; None when there is none."""
    if not streamed:
        return _usage_of(answer)
    for line in reversed(answer.split(b"\n")):
        line = line.strip()
        if line.startswith(_DATA) and _USAGE in line:
            found = _usage_of(line[len(_DATA) :])
            if found is not None:
                return found
    return None


def _tokens(value: object) -> int | None:
    """A token count a replica reported, if it is a sane one (0 to 2**31 - 1: the column's
    range; a model reporting 10**23 must not make the store refuse a whole batch)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS:
        return value
    return None


def _usage_of(text: bytes) -> tuple[int | None, int | None] | None:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # a replica's answer: not trusted to be sane
        return None
    usage = doc.get("usage") if isinstance(doc, dict) else None
    if not isinstance(usage, dict):
        return None
    return _tokens(usage.get("prompt_tokens")), _tokens(usage.get("completion_tokens"))


def _request_capture(body: bytes | StreamedBody | None, capture: CaptureSpec) -> str | None:
    if body is None:
        return None
    if isinstance(body, StreamedBody):
        return captured(bytes(body.captured or b""), body.size, capture)
    return captured(body, len(body), capture)
