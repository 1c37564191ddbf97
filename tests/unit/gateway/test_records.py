"""Request records: one per invocation through the gateway, for each protocol and failure.

Over real sockets: a stand-in LLM-like replica (`chat_upstream`), the gateway in a server
thread with a `RecordBuffer`, httpx as the client. A record is offered when the invocation
finishes, just after its last byte, so the tests wait for the buffer to fill.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from podium.core.access import Scope as Permission
from podium.core.access import TokenDirectory, Visibility
from podium.core.log_context import current_request
from podium.core.observability_spec import CaptureSpec
from podium.core.phases import EndpointStatus
from podium.core.request_record import ErrorClass, Protocol, RecordBuffer, RequestRecord
from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute
from podium.core.settings import GatewaySettings
from podium.gateway import AccessStage, Gateway
from podium.gateway.activator import Refusal
from podium.gateway.invocation import Invocation
from tests.unit.gateway import access_kit
from tests.unit.gateway.chat_upstream import FIRST, STREAM_USAGE, USAGE, ChatUpstream
from tests.unit.gateway.conftest import RunningGateway, Servers
from tests.unit.gateway.servers import RawServer, ServerThread, dead_port, read_request, wait_until


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[ChatUpstream, ReplicaRoute]]:
    app = ChatUpstream("c0")
    server = ServerThread(app).start()
    yield app, ReplicaRoute("c0", "127.0.0.1", server.port, revision=3)
    app.release()
    server.stop()


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers("http1")
    yield s
    s.close()


def route(name: str, *replicas: ReplicaRoute, **kwargs: Any) -> EndpointRoute:
    return EndpointRoute(name, EndpointStatus.RUNNING, replicas, **kwargs)


def records_of(buffer: RecordBuffer, n: int) -> list[RequestRecord]:
    """The next `n` records (waiting for them: each is offered just after its last byte)."""
    assert wait_until(lambda: len(buffer) >= n), f"{len(buffer)} of {n} records"
    return [RequestRecord.from_row(row) for row in buffer.drain(1000)]


def recording(
    servers: Servers,
    *routes: EndpointRoute,
    capacity: int = 100,
    settings: GatewaySettings | None = None,
    **kwargs: object,
) -> tuple[RunningGateway, RecordBuffer]:
    buffer = RecordBuffer(capacity)
    gw = servers.gateway(settings, records=buffer, **kwargs)  # type: ignore[arg-type]
    gw.publish(*routes)
    return gw, buffer


def chat(model: str, **extra: object) -> bytes:
    return json.dumps({"model": model, "messages": [], **extra}).encode()


def test_an_hf_call_is_recorded_with_its_replica_timings_bytes_and_client(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(servers, route("e", replica))
    body = b'{"inputs": [1, 2]}'
    headers = {"user-agent": "tester/1.0", "x-request-id": "rid-hf"}
    with gw.client() as client:
        r = client.post("/endpoints/e/predict?verbose=1", content=body, headers=headers)
    assert r.status_code == 200
    (rec,) = records_of(buffer, 1)
    assert (rec.request_id, rec.endpoint, rec.project) == ("rid-hf", "e", "default")
    assert (rec.protocol, rec.route, rec.method) == (Protocol.HF, "/predict", "POST")
    assert (rec.status, rec.error) == (200, None)
    assert (rec.replica_id, rec.revision) == ("c0", 3)
    assert (rec.bytes_in, rec.bytes_out) == (len(body), len(r.content))
    assert (rec.client, rec.user_agent, rec.token_id) == ("127.0.0.1", "tester/1.0", None)
    assert rec.received_at > 0
    assert rec.upstream_ms is not None and rec.ttfb_ms is not None
    # Each step lies within the one before it (an order, not a speed).
    assert 0 <= rec.upstream_ms <= rec.latency_ms
    assert 0 <= rec.ttfb_ms <= rec.latency_ms
    assert rec.queue_ms == 0.0  # a slot was free
    assert (rec.streamed, rec.ttft_ms, rec.tokens_in, rec.tokens_out) == (False, None, None, None)
    assert (rec.request_body, rec.response_body) == (None, None)  # no capture
    assert buffer.offered == 1 and buffer.dropped == 0


def test_openai_calls_through_the_router_and_the_endpoint_path_read_usage(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(servers, route("llm", replica))
    with gw.client() as client:
        routed = client.post("/v1/chat/completions", content=chat("llm"))
        direct = client.post("/endpoints/llm/v1/chat/completions?x=1", content=chat("llm"))
    assert routed.status_code == direct.status_code == 200
    recs = records_of(buffer, 2)
    for rec in recs:
        assert (rec.protocol, rec.route, rec.endpoint) == (
            Protocol.OPENAI,
            "/v1/chat/completions",
            "llm",
        )
        assert (rec.tokens_in, rec.tokens_out) == (
            USAGE["prompt_tokens"],
            USAGE["completion_tokens"],
        )
        assert rec.streamed is False and rec.error is None
    assert recs[0].bytes_in == len(chat("llm"))


def test_v2_and_command_style_paths_name_their_protocol(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(
        servers,
        route("triton", replica, framework="triton"),
        route("own", replica, framework="command"),
        route("vllm", replica, framework="vllm"),
        route("sk", replica, framework="sklearn"),
    )
    with gw.client() as client:
        assert client.post("/endpoints/sk/v2/models/m/infer", content=b"{}").status_code == 200
        assert client.post("/endpoints/triton/v2/models/m/infer", content=b"{}").status_code == 200
        assert client.post("/endpoints/own/generate", content=b"{}").status_code == 200
        assert client.get("/endpoints/vllm/metrics-like").status_code == 200
        r = client.post("/endpoints/vllm/v1/chat/completions", content=chat("vllm"))
        assert r.status_code == 200
    recs = records_of(buffer, 5)
    assert [(r.endpoint, r.protocol, r.method) for r in recs] == [
        ("sk", Protocol.V2, "POST"),
        ("triton", Protocol.V2, "POST"),
        ("own", Protocol.COMMAND, "POST"),
        ("vllm", Protocol.COMMAND, "GET"),  # a preset server's own route
        ("vllm", Protocol.OPENAI, "POST"),
    ]


def test_a_stream_is_recorded_with_its_first_token_and_the_usage_it_reports(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(servers, route("llm", replica))
    with gw.client() as client:
        r = client.post("/v1/chat/completions", content=chat("llm", stream=True))
    assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
    (rec,) = records_of(buffer, 1)
    assert rec.streamed is True and rec.error is None and rec.status == 200
    # `usage` wins over the count of events (an event may carry several tokens).
    assert (rec.tokens_in, rec.tokens_out) == (7, STREAM_USAGE["completion_tokens"])
    assert rec.ttfb_ms is not None and rec.ttft_ms is not None
    assert 0 <= rec.ttfb_ms <= rec.ttft_ms <= rec.latency_ms
    assert rec.bytes_out == len(r.content)


def test_a_stream_the_client_cancels_says_so_with_the_tokens_so_far(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    app, replica = upstream
    app.disconnected.clear()
    gw, buffer = recording(servers, route("llm", replica))
    seen = 0
    with (
        gw.client() as client,
        client.stream(
            "POST", "/v1/chat/completions", content=chat("llm", stream=True, hold=True)
        ) as r,
    ):
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:"):
                seen += 1
            if seen == FIRST:
                break  # leave mid-stream: the context managers close the connection
    assert wait_until(app.disconnected.is_set)  # the replica saw its client leave too
    (rec,) = records_of(buffer, 1)
    assert (rec.status, rec.error) == (200, ErrorClass.CLIENT_GONE)  # the status as sent
    assert rec.streamed is True and rec.tokens_out == FIRST and rec.tokens_in is None
    assert rec.ttft_ms is not None
    gw.settle()
    load = gw.gateway.load_snapshot()["llm"]
    assert load.requests == 1


def test_no_replica_reachable_is_a_502_no_replica(
    servers: Servers,
) -> None:
    gone = ReplicaRoute("dead", "127.0.0.1", dead_port(), revision=2)
    gw, buffer = recording(servers, route("e", gone))
    with gw.client() as client:
        assert client.post("/endpoints/e/predict", content=b"{}").status_code == 502
    (rec,) = records_of(buffer, 1)
    assert (rec.status, rec.error) == (502, ErrorClass.NO_REPLICA)
    assert (rec.replica_id, rec.revision) == ("dead", 2)  # the replica it last tried
    assert rec.upstream_ms is None  # it never reached one
    assert rec.ttfb_ms == rec.latency_ms  # the gateway's own answer: head and body at once


async def _hang_up(reader: object, writer: object, n: int) -> None:
    """Read the request whole, then close without a byte of answer (a crash)."""
    await read_request(reader)  # type: ignore[arg-type]


@pytest.mark.parametrize(("why", "error"), [("ran out of memory", "crashed"), (None, "closed")])
def test_a_replica_that_dies_serving_the_request_is_recorded_as_crashed_or_closed(
    servers: Servers, why: str | None, error: str
) -> None:
    async def why_failed(replica_id: str) -> str | None:
        return why

    with RawServer(_hang_up) as raw:
        gw, buffer = recording(
            servers,
            route("e", ReplicaRoute("x", "127.0.0.1", raw.port, revision=1)),
            why_failed=why_failed,
        )
        with gw.client() as client:
            assert client.post("/endpoints/e/predict", content=b"{}").status_code == 502
    (rec,) = records_of(buffer, 1)
    expected = ErrorClass.REPLICA_CRASHED if error == "crashed" else ErrorClass.REPLICA_CLOSED
    assert (rec.status, rec.error, rec.replica_id) == (502, expected, "x")
    assert rec.upstream_ms is not None  # it reached the replica
    snapshot = gw.gateway.service_snapshot()
    assert snapshot.replicas["x"].counts.by_class[5] == 1


def test_a_replicas_own_errors_are_replica_4xx_and_5xx(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(servers, route("e", replica))
    with gw.client() as client:
        assert client.post("/endpoints/e/status/422", content=b"{}").status_code == 422
        assert client.post("/endpoints/e/status/500", content=b"{}").status_code == 500
    recs = records_of(buffer, 2)
    assert [(r.status, r.error) for r in recs] == [
        (422, ErrorClass.REPLICA_4XX),
        (500, ErrorClass.REPLICA_5XX),
    ]


def test_a_body_over_the_limit_is_a_413_too_large(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(
        servers, route("e", replica), settings=GatewaySettings(max_body_bytes=100)
    )
    with gw.client() as client:
        assert client.post("/endpoints/e/predict", content=b"x" * 200).status_code == 413
    (rec,) = records_of(buffer, 1)
    assert (rec.status, rec.error, rec.bytes_in, rec.replica_id) == (
        413,
        ErrorClass.TOO_LARGE,
        0,
        None,
    )


def test_refusals_held_requests_and_paused_endpoints_have_their_classes(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(
        servers,
        route("cold", wait_timeout_s=0.05),  # no replica: held, then 504
        EndpointRoute("sleepy", EndpointStatus.PAUSED, ()),
        route("e", replica),
    )
    with gw.client() as client:
        assert client.post("/endpoints/cold/predict", content=b"{}").status_code == 504
        assert client.post("/endpoints/sleepy/predict", content=b"{}").status_code == 503
        bad = {"x-podium-wait-timeout": "soon"}
        assert client.post("/endpoints/e/p", content=b"{}", headers=bad).status_code == 400
    recs = records_of(buffer, 3)
    assert [(r.endpoint, r.status, r.error) for r in recs] == [
        ("cold", 504, ErrorClass.QUEUE_TIMEOUT),
        ("sleepy", 503, ErrorClass.PAUSED),
        ("e", 400, ErrorClass.BAD_REQUEST),
    ]
    assert recs[0].queue_ms > 0  # held by the activator until it gave up


def test_the_access_stages_refusals_are_recorded_and_a_caller_names_its_token(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    directory = TokenDirectory()
    good, good_id = access_kit.token(directory, "caller", [Permission.INVOKE])
    other, _ = access_kit.token(directory, "elsewhere", [Permission.INVOKE], ["team"])
    gw, buffer = recording(
        servers,
        access_kit.route("default", "e", replica),
        access_kit.route("default", "open", replica, Visibility.PUBLIC),
        stages=[AccessStage(directory, auth=True)],
    )
    with gw.client() as client:
        assert client.post("/endpoints/e/p", content=b"{}").status_code == 401
        assert client.post("/endpoints/e/p", headers=access_kit.bearer(other)).status_code == 403
        assert client.post("/endpoints/e/p", headers=access_kit.bearer(good)).status_code == 200
        routed = client.post(
            "/v1/chat/completions", content=chat("e"), headers=access_kit.bearer(good)
        )
        assert routed.status_code == 200
        assert client.post("/endpoints/open/p", content=b"{}").status_code == 200
    recs = records_of(buffer, 5)
    assert [(r.status, r.error, r.token_id) for r in recs] == [
        (401, ErrorClass.UNAUTHENTICATED, None),
        (403, ErrorClass.FORBIDDEN, recs[1].token_id),
        (200, None, good_id),
        (200, None, good_id),
        (200, None, None),  # a public endpoint does not look at a token
    ]
    assert recs[1].token_id is not None and recs[1].token_id != good_id


def test_payload_capture_with_sample_1_redacts_keys_at_any_depth(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    spec = CaptureSpec(sample=1, max_bytes=4096, redact=("api_key", "password"))
    gw, buffer = recording(servers, route("e", replica, capture=spec))
    secret = {"inputs": "hello", "api_key": "s3cret", "user": [{"Password": "hunter2"}]}
    with gw.client() as client:
        assert client.post("/endpoints/e/p", json=secret).status_code == 200
        assert client.post("/endpoints/e/p", content=b"not json s3cret").status_code == 200
    json_rec, text_rec = records_of(buffer, 2)
    assert json_rec.request_body is not None and json_rec.response_body is not None
    assert json.loads(json_rec.request_body) == {
        "inputs": "hello",
        "api_key": "***",
        "user": [{"Password": "***"}],
    }
    answer = json.loads(json_rec.response_body)  # the replica echoed the body back
    assert answer["echo"]["api_key"] == "***" and answer["server"] == "c0"
    assert "s3cret" not in json_rec.request_body + json_rec.response_body
    assert "hunter2" not in json_rec.request_body + json_rec.response_body
    # A body that cannot be parsed cannot be redacted: not stored at all.
    assert text_rec.request_body == "[not stored: not JSON, cannot redact]"


def test_payload_capture_without_redaction_cuts_at_max_bytes_and_sample_0_stores_nothing(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(
        servers,
        route("cut", replica, capture=CaptureSpec(sample=1, max_bytes=8)),
        route("never", replica, capture=CaptureSpec(sample=0)),
    )
    with gw.client() as client:
        assert client.post("/endpoints/cut/p", content=b"0123456789abcdef").status_code == 200
        assert client.post("/endpoints/never/p", content=b"0123456789abcdef").status_code == 200
    cut, never = records_of(buffer, 2)
    assert cut.request_body == "01234567…[cut: first 8 of 16 bytes]"
    assert cut.response_body == f'{{"echo":…[cut: first 8 of {cut.bytes_out} bytes]'

    assert (never.request_body, never.response_body) == (None, None)


def test_a_full_buffer_drops_and_counts_records_and_the_requests_still_succeed(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    gw, buffer = recording(servers, route("e", replica), capacity=2)
    with gw.client() as client:
        for _ in range(5):
            assert client.post("/endpoints/e/p", content=b"{}").status_code == 200
    assert wait_until(lambda: buffer.offered == 5)
    assert (len(buffer), buffer.dropped) == (2, 3)


def test_the_request_id_is_bound_to_the_log_context_before_the_stages_run(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    seen: list[str] = []

    class Watch:
        async def check(self, call: Invocation) -> Refusal | None:
            seen.append(current_request())
            return None

        def finish(self, call: Invocation, status: int, seconds: float) -> None:
            seen.append(current_request())

    gw, buffer = recording(servers, route("e", replica), stages=[Watch()])
    with gw.client() as client:
        client.post("/endpoints/e/p", content=b"{}", headers={"x-request-id": "rid-log"})
    (rec,) = records_of(buffer, 1)
    assert seen == ["rid-log", "rid-log"] and rec.request_id == "rid-log"


def test_the_service_snapshot_counts_per_replica_and_per_endpoint(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    (other,) = servers.replicas(1)
    gw = servers.gateway()  # no records: the counts do not depend on them
    gw.publish(route("e", replica, other.route))
    body = b'{"x": 1}'
    sizes = 0
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        for _ in range(20):
            r = client.post("/endpoints/e/p", content=body)
            assert r.status_code == 200
            sizes += len(r.content)
        assert client.post("/endpoints/e/status/503", content=body).status_code in (200, 503)
    gw.settle()
    snap = gw.gateway.service_snapshot()
    assert snap.taken_at > 0
    per_replica = {rid: c.counts for rid, c in snap.replicas.items()}
    assert set(per_replica) == {"c0", other.id}
    assert all(c.endpoint == "e" for c in snap.replicas.values())
    assert sum(c.requests for c in per_replica.values()) == 21
    assert sum(sum(c.latency_buckets) for c in per_replica.values()) == 21
    assert sum(c.bytes_in for c in per_replica.values()) == 21 * len(body)
    endpoint = snap.endpoints["e"]
    assert endpoint.requests == 21 and sum(endpoint.latency_buckets) == 21
    assert endpoint.bytes_in == 21 * len(body)
    assert endpoint.bytes_out == sum(c.bytes_out for c in per_replica.values()) >= sizes
    assert endpoint.by_class[2] + endpoint.by_class[5] == 21


def test_the_gateway_registers_into_the_servers_registry(
    servers: Servers, upstream: tuple[ChatUpstream, ReplicaRoute]
) -> None:
    _, replica = upstream
    registry = CollectorRegistry(auto_describe=False)
    gateway = Gateway(
        InProcessRoutingSource(), GatewaySettings(), records=RecordBuffer(10), registry=registry
    )
    assert gateway.metrics_registry is registry
    gw = servers.gateway()
    gw.publish(route("e", replica))
    with gw.client() as client:
        assert client.post("/endpoints/e/p", content=b"{}").status_code == 200
    gw.settle()
    own = generate_latest(gw.gateway.metrics_registry).decode()
    assert 'podium_gateway_replica_requests_total{code="2xx",endpoint="e",replica="c0"} 1.0' in own
    assert 'podium_gateway_request_bytes_total{endpoint="e"} 2.0' in own
    text = generate_latest(registry).decode()
    assert "podium_gateway_record_failures_total 0.0" in text  # the record stage's own
    assert "podium_gateway_requests" in text


def test_an_upstream_timeout_and_an_answer_cut_short_have_their_classes(
    servers: Servers,
) -> None:
    async def cut(reader: Any, writer: Any, n: int) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
            b"9\r\ndata: x\n\n\r\n"
        )
        await writer.drain()  # then the connection closes mid-stream

    (slow,) = servers.replicas(1)
    with RawServer(cut) as raw:
        gw, buffer = recording(
            servers,
            route("slow", slow.route, timeout_s=0.2),
            route("cut", ReplicaRoute("k", "127.0.0.1", raw.port, revision=1)),
        )
        with gw.client() as client:
            assert client.post("/endpoints/slow/slow", content=b"{}").status_code == 504
            with pytest.raises(httpx.RemoteProtocolError):
                client.post("/endpoints/cut/stream", content=b"{}")
    slow.app.release()
    timed_out, broken = records_of(buffer, 2)
    assert (timed_out.status, timed_out.error) == (504, ErrorClass.UPSTREAM_TIMEOUT)
    assert timed_out.upstream_ms is not None and timed_out.replica_id == slow.id
    assert (broken.status, broken.error) == (200, ErrorClass.UPSTREAM_CUT)
    assert (broken.streamed, broken.tokens_out) == (True, 1)
