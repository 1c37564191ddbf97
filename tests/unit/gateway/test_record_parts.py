"""The pure parts of the request records: payload capture (cutting, redaction), counting a
stream's events across chunk boundaries, and forgetting the counts of replicas that left."""

from __future__ import annotations

import dataclasses
import gc
import json

import pytest

from podium.core.observability_spec import CaptureSpec
from podium.core.phases import EndpointStatus
from podium.core.request_record import (
    COLUMNS,
    ErrorClass,
    Protocol,
    RecordBuffer,
    RequestRecord,
)
from podium.core.routing import EndpointRoute
from podium.gateway.capture import NOT_JSON, PARSE_FLOOR, captured, redacted
from podium.gateway.headers import RequestHead
from podium.gateway.invocation import Invocation
from podium.gateway.metering import FORGET_AFTER_S, Meters
from podium.gateway.recording import RecordStage

ATOMIC = (str, int, float, bool)  # what a row holds, None besides


def test_redaction_replaces_keys_at_any_depth_case_insensitively() -> None:
    doc = {"a": 1, "Token": "t", "list": [{"token": "u", "keep": [{"TOKEN": {"deep": 1}}]}]}
    out = redacted(json.dumps(doc).encode(), frozenset({"token"}))
    assert out is not None
    assert json.loads(out) == {
        "a": 1,
        "Token": "***",
        "list": [{"token": "***", "keep": [{"TOKEN": "***"}]}],
    }
    assert redacted(b"{not json", frozenset({"token"})) is None
    assert redacted(b"[" * 100 + b"]" * 100, frozenset({"token"})) is None  # too deep


def test_with_redact_keys_only_a_whole_json_body_is_stored_cut_after_redaction() -> None:
    spec = CaptureSpec(sample=1, max_bytes=20, redact=("secret",))
    body = json.dumps({"secret": "x" * 50, "b": 2}).encode()
    text = captured(body, len(body), spec)
    assert text is not None
    assert text.startswith('{"secret":"***","b":') and "xxx" not in text
    # Part of a body (a streamed upload, a streamed answer) cannot be parsed: not stored.
    part = captured(body[:20], len(body), spec)
    assert (
        part == f"[not stored: {len(body)} bytes, more than the gateway reads whole; cannot redact]"
    )
    assert captured(b"plain text", 10, spec) == NOT_JSON
    big = b"[" + b"1," * PARSE_FLOOR + b"1]"
    assert captured(big, len(big), spec) is not None
    assert "cannot redact" in (captured(big, len(big), spec) or "")


def test_without_redact_keys_the_first_bytes_are_stored_and_a_cut_says_so() -> None:
    spec = CaptureSpec(sample=1, max_bytes=4)
    assert captured(b"abc", 3, spec) == "abc"
    assert captured(b"abcdef", 6, spec) == "abcd…[cut: first 4 of 6 bytes]"
    assert captured(b"\xff\xfeok", 4, spec) == "\ufffd\ufffdok"  # bad UTF-8 replaced
    assert captured(b"", 0, spec) is None


def call() -> Invocation:
    route = EndpointRoute("e", EndpointStatus.RUNNING)
    head = RequestHead([], "rid", None)
    c = Invocation(route, {"headers": []}, head, "/v1/chat/completions", 0.0)
    c.streamed = True
    return c


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 13, 1000])
def test_stream_events_are_counted_whatever_the_chunk_boundaries(size: int) -> None:
    stream = (
        b'data: {"a": 1}\n\n'
        b"event: ping\ndata: 2\n\n"
        b": a comment saying data: not counted\n\n"
        b'data: {"usage": {"prompt_tokens": 1}}\r\n\r\n'
        b"data: [DONE]\n\n"
    )
    c = call()
    for i, start in enumerate(range(0, len(stream), size)):
        c.relayed(stream[start : start + size], float(i + 1))
    assert (c.events, c.done, c.tokens) == (4, 1, 3)
    assert c.bytes_out == len(stream)
    assert c.first_token > 0


def test_no_events_no_first_token() -> None:
    c = call()
    c.relayed(b"data: [DONE]\n\n", 1.0)
    assert c.tokens == 0


def test_a_replica_out_of_the_table_is_reported_then_forgotten() -> None:
    meters = Meters()
    meters.replica("r1", "e").finish(200, 0.01, 10, 20)
    meters.replica("r2", "e").finish(503, 0.02, 1, 2)
    first = meters.service_snapshot({"r1"}, 100.0, now=0.0)
    assert set(first.replicas) == {"r1", "r2"}  # r2 left: its final counts are still read
    r2 = first.replicas["r2"].counts
    assert (r2.requests, r2.by_class[5], r2.bytes_in, r2.bytes_out) == (1, 1, 1, 2)
    assert set(meters.service_snapshot({"r1"}, 101.0, now=FORGET_AFTER_S).replicas) == {
        "r1",
        "r2",
    }
    later = meters.service_snapshot({"r1"}, 102.0, now=FORGET_AFTER_S + 1)
    assert set(later.replicas) == {"r1"} and later.taken_at == 102.0
    # A replica that comes back before it is forgotten keeps counting.
    meters.replica("r3", "e").finish(200, 0.01, 0, 0)
    meters.service_snapshot(set(), 0.0, now=0.0)
    meters.service_snapshot({"r3"}, 0.0, now=FORGET_AFTER_S + 10)
    assert (
        meters.service_snapshot(set(), 0.0, now=2 * FORGET_AFTER_S).replicas["r3"].counts.requests
        == 1
    )


def test_the_record_stage_builds_rows_in_the_contracts_column_order() -> None:
    """`RecordStage.record` builds the row positionally (cheaper on the hot path): a change
    of `COLUMNS` must change it too. The row is what `RequestRecord.row()` makes of the
    same record (enums as their values)."""
    assert list(COLUMNS) == [
        "request_id", "endpoint", "project", "protocol", "route", "method", "status",
        "error", "received_at", "latency_ms", "queue_ms", "revision", "replica_id",
        "upstream_ms", "ttfb_ms", "ttft_ms", "tokens_in", "tokens_out", "streamed",
        "bytes_in", "bytes_out", "client", "user_agent", "token_id", "request_body",
        "response_body", "task_id",
    ]  # fmt: skip
    assert sorted(COLUMNS) == sorted(f.name for f in dataclasses.fields(RequestRecord))
    c = call()
    c.streamed = False
    c.scope = {"headers": [(b"user-agent", b"ua")], "method": "GET", "client": ("10.0.0.1", 1)}
    c.received_at, c.replica_id, c.revision = 5.0, "r", 2
    c.upstream_start, c.upstream_end, c.head_sent, c.status_sent = 0.25, 0.5, 0.375, 200
    c.body, c.bytes_out = b"abc", 7
    row = RecordStage(RecordBuffer(1)).record(c, 200, 1.0)
    assert all(value is None or type(value) in ATOMIC for value in row)
    assert row[COLUMNS.index("protocol")] == "openai"
    expected = RequestRecord(
        request_id="rid",
        endpoint="e",
        project="default",
        protocol=Protocol.OPENAI,
        route="/v1/chat/completions",
        method="GET",
        status=200,
        received_at=5.0,
        latency_ms=1000.0,
        queue_ms=0.0,
        revision=2,
        replica_id="r",
        error=None,
        upstream_ms=250.0,
        ttfb_ms=375.0,
        ttft_ms=None,
        tokens_in=None,
        tokens_out=None,
        streamed=False,
        bytes_in=3,
        bytes_out=7,
        client="10.0.0.1",
        user_agent="ua",
        token_id=None,
    )

    assert row == expected.row()
    assert RequestRecord.from_row(row) == expected


def test_an_offered_row_is_untracked_by_the_garbage_collector_after_a_young_collection() -> None:
    """Buffered rows wait up to `flush_s`: tuples of atomic values leave the collector's
    care at its first collection, so they never reach the old generation and never make
    it run full collections (`core.request_record`)."""
    c = call()
    c.streamed = False
    c.scope = {"headers": [(b"user-agent", b"ua")], "method": "POST", "client": ("10.0.0.1", 1)}
    c.received_at, c.replica_id, c.revision, c.status_sent = 5.0, "r", 2, 502
    c.error = ErrorClass.REPLICA_5XX
    buffer = RecordBuffer(2)
    RecordStage(buffer).finish(c, 502, 0.5)
    (row,) = buffer.drain(1)
    assert row[COLUMNS.index("error")] == "replica_5xx"
    buffer.offer(row)
    gc.collect(0)
    assert not gc.is_tracked(row)
    assert buffer.drain(1) == [row]


def test_an_endpoint_s_counts_are_of_finished_requests() -> None:
    """A request still in flight is in no count yet: the history divides finished latency
    by finished requests (a started-but-unfinished one once made the average half)."""
    from podium.gateway.metering import EndpointMeter

    meter = EndpointMeter("e")
    meter.start()
    meter.start()
    meter.finish(200, 0.01)
    counts = meter.counts()
    assert counts.requests == 1 == sum(counts.by_class)
    assert counts.latency_sum / counts.requests == 0.01
    meter.finish(503, 0.03)
    assert meter.counts().requests == 2
    assert meter.counts().by_class[5] == 1


def test_captured_bytes_waiting_are_bounded_and_returned_when_drained() -> None:
    """Past the payload budget a record keeps its fields but not its bodies."""
    from podium.core.request_record import RecordBuffer

    buffer = RecordBuffer(10, payload_bytes=100)
    assert buffer.reserve_payload(60)
    assert not buffer.reserve_payload(60)
    assert buffer.payloads_refused == 1
    rec = RequestRecord(
        request_id="r",
        endpoint="e",
        project="default",
        protocol=Protocol.HF,
        route="/",
        method="POST",
        status=200,
        received_at=1.0,
        latency_ms=1.0,
        request_body="x" * 40,
        response_body="y" * 20,
    )
    buffer.offer(rec.row())
    assert buffer.drain(10) == [rec.row()]
    assert buffer.payload_bytes == 0
    assert buffer.reserve_payload(100)


def test_absurd_token_counts_a_replica_reports_are_not_kept() -> None:
    """A model reporting 10**23 tokens must not make the store refuse a whole batch."""
    from podium.gateway.recording import _usage_of

    assert _usage_of(
        b'{"usage": {"prompt_tokens": -5, "completion_tokens": 100000000000000000000000}}'
    ) == (None, None)
    assert _usage_of(b'{"usage": {"prompt_tokens": 3, "completion_tokens": true}}') == (3, None)
