"""The recording stage: one `core.request_record.RequestRecord` per invocation.

`RecordStage` is a pipeline `Stage` the gateway runs first when it is given a
`RecordBuffer` (`Gateway(..., records=buffer)`), so the refusals of the stages after it
(401, 403, 429) are recorded too. `check` notes when the request was received (unix time)
and whether its payload is captured (`route.capture`: `random() < sample`); `finish` builds
the record from what the pipeline and the proxy noted on the `Invocation` and offers it to
the buffer, which never blocks (a full buffer drops and counts it). `finish` never raises.

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
from collections.abc import Callable

from podium.core.access import NOBODY_CHECKS, Principal
from podium.core.observability_spec import CaptureSpec
from podium.core.request_record import ErrorClass, Protocol, RecordBuffer, RequestRecord
from podium.gateway.activator import Refusal
from podium.gateway.body import StreamedBody
from podium.gateway.capture import captured
from podium.gateway.invocation import Invocation
from podium.runtimes.presets import EXTERNAL_FRAMEWORKS

log = logging.getLogger("podium.gateway")

MAX_ROUTE = 256
MAX_USER_AGENT = 256
MAX_CLIENT = 64
PRINCIPAL = "podium.principal"  # where the access stage leaves the caller in the scope
_USER_AGENT = b"user-agent"
_USAGE = b'"usage"'
_DATA = b"data:"

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


class RecordStage:
    """The request record stage (module docstring). `failed` counts records that could
    not be built (a bug, logged); `random` is the capture sampler (tests pin it)."""

    def __init__(
        self, buffer: RecordBuffer, *, random: Callable[[], float] = random.random
    ) -> None:
        self._buffer = buffer
        self._random = random
        self.failed = 0

    async def check(self, call: Invocation) -> Refusal | None:
        call.received_at = time.time()
        capture = call.route.capture
        if capture is not None and capture.sample > 0 and self._random() < capture.sample:
            call.capture = capture.max_bytes
            call.captured = bytearray()
        return None

    def finish(self, call: Invocation, status: int, seconds: float) -> None:
        try:
            record = self.record(call, status, seconds)
        except Exception:
            self.failed += 1
            log.exception("could not build the request record of %s", call.head.request_id)
            return
        self._buffer.offer(record)

    def record(self, call: Invocation, status: int, seconds: float) -> RequestRecord:
        """The record of a finished invocation (`status` 0: the client left)."""
        route = call.route
        target = call.target
        path = target.partition("?")[0] if "?" in target else target
        if len(path) > MAX_ROUTE:
            path = path[:MAX_ROUTE]
        protocol = _protocol(path, route.framework)
        sent = status or call.status_sent  # a client that left mid-answer saw this status
        error = call.error
        if error is None:
            if not status:
                error = ErrorClass.CLIENT_GONE
            elif call.status_sent >= 500:
                error = ErrorClass.REPLICA_5XX
            elif call.status_sent >= 400:
                error = ErrorClass.REPLICA_4XX
            elif status >= 400 and not call.status_sent:
                error = _BY_STATUS.get(status, ErrorClass.BAD_REQUEST)
        started = call.started
        latency_ms = seconds * 1000.0
        if call.head_sent:
            ttfb_ms: float | None = (call.head_sent - started) * 1000.0
        else:
            ttfb_ms = latency_ms if status else None
        upstream_ms = None
        if call.upstream_end:
            upstream_ms = (call.upstream_end - call.upstream_start) * 1000.0
        tokens_in = tokens_out = None
        if call.streamed:
            tokens_out = call.tokens
        answer = call.answer
        if answer is not None and protocol is Protocol.OPENAI and _USAGE in answer:
            usage = _usage(answer, call.streamed)
            if usage is not None:
                tokens_in, completion = usage
                if completion is not None:
                    tokens_out = completion
        body = call.body
        if body is None:
            bytes_in = 0
        elif isinstance(body, StreamedBody):
            bytes_in = body.size
        else:
            bytes_in = len(body)
        scope = call.scope
        client = scope.get("client")
        user_agent = None
        for name, value in scope["headers"]:
            if name == _USER_AGENT:
                user_agent = value[:MAX_USER_AGENT].decode("latin-1")
                break
        who = scope.get(PRINCIPAL)
        token_id = who.token_id if isinstance(who, Principal) and who is not NOBODY_CHECKS else None
        request_body = response_body = None
        capture = route.capture
        if call.capture and capture is not None:
            request_body = _request_capture(body, capture)
            if call.captured:  # an answer relayed chunk by chunk: its first bytes
                out = bytes(call.captured)
            else:  # a whole answer (a stream's `answer` is only its `usage` chunk)
                out = answer if answer is not None and not call.streamed else b""
            response_body = captured(out, call.bytes_out, capture) if call.head_sent else None
        return RequestRecord(
            request_id=call.head.request_id,
            endpoint=route.name,
            project=route.project,
            protocol=protocol,
            route=path,
            method=scope["method"],
            status=sent,
            received_at=call.received_at,
            latency_ms=latency_ms,
            queue_ms=call.queue_s * 1000.0,
            revision=call.revision,
            replica_id=call.replica_id,
            error=error,
            upstream_ms=upstream_ms,
            ttfb_ms=ttfb_ms,
            ttft_ms=(call.first_token - started) * 1000.0 if call.first_token else None,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            streamed=call.streamed,
            bytes_in=bytes_in,
            bytes_out=call.bytes_out,
            client=client[0][:MAX_CLIENT] if client else None,
            user_agent=user_agent,
            token_id=token_id,
            request_body=request_body,
            response_body=response_body,
        )


def _protocol(path: str, framework: str) -> Protocol:
    """The API a request used: `/v1/…` OpenAI (the router's too), `/v2/…` the Open
    Inference Protocol, any other path of a `command` or preset server its own, else HF."""
    if path.startswith("/v1/"):
        return Protocol.OPENAI
    if path.startswith("/v2/"):
        return Protocol.V2
    if framework in EXTERNAL_FRAMEWORKS:
        return Protocol.COMMAND
    return Protocol.HF


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


def _usage_of(text: bytes) -> tuple[int | None, int | None] | None:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # a replica's answer: not trusted to be sane
        return None
    usage = doc.get("usage") if isinstance(doc, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        prompt if isinstance(prompt, int) and not isinstance(prompt, bool) else None,
        completion if isinstance(completion, int) and not isinstance(completion, bool) else None,
    )


def _request_capture(body: bytes | StreamedBody | None, capture: CaptureSpec) -> str | None:
    if body is None:
        return None
    if isinstance(body, StreamedBody):
        return captured(bytes(body.captured or b""), body.size, capture)
    return captured(body, len(body), capture)
