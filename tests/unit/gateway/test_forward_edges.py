"""Edges of `Proxy.forward` a client or operator sees: the exact problem it answers on a
timeout, on a bad response, on a streamed upload that grows past the limit, and the reason it
reports when it ejects a replica. Each test runs once per upstream transport.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx

from podium.core.errors import TooLarge
from podium.core.routing import ReplicaRoute
from podium.core.settings import GatewaySettings
from tests.unit.gateway.conftest import Servers, endpoint
from tests.unit.gateway.servers import RawServer, dead_port, read_request, wait_until


def chunks(n: int, size: int = 1000) -> Iterator[bytes]:
    for _ in range(n):
        yield b"u" * size


def test_a_timeout_is_a_504_naming_the_endpoint_and_its_limit(servers: Servers) -> None:
    (replica,) = servers.replicas(1)
    gw = servers.gateway()
    gw.publish(endpoint("echo", replica.route, timeout_s=0.2))
    with gw.client() as client:
        r = client.get("/endpoints/echo/slow", headers={"x-request-id": "t1"})
    assert r.status_code == 504
    assert r.headers["x-request-id"] == "t1"
    problem = r.json()
    assert problem["title"] == "Upstream timeout"
    assert problem["detail"] == "endpoint 'echo' did not answer within 0.2 s"
    assert problem["endpoint"] == "echo"


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    await read_request(reader)
    writer.write(b"SPDY/9 what\r\n\r\n")
    await writer.drain()


def test_a_bad_response_is_a_502_saying_what_was_wrong(servers: Servers) -> None:
    gw = servers.gateway()
    with RawServer(_garbage) as raw, gw.client() as client:
        gw.publish(endpoint("raw", ReplicaRoute("raw", "127.0.0.1", raw.port, revision=1)))
        r = client.get("/endpoints/raw/", headers={"x-request-id": "b1"})
    assert r.status_code == 502
    assert r.headers["x-request-id"] == "b1"
    problem = r.json()
    assert problem["title"] == "Bad gateway"
    assert problem["endpoint"] == "raw"
    prefix = "endpoint 'raw': bad response from a replica: "
    assert problem["detail"].startswith(prefix)
    assert problem["detail"].removeprefix(prefix).strip()  # the transport's words
    assert gw.failures == []  # a replica that answers, however badly, is not ejected


def test_the_reason_reported_for_an_ejected_replica_is_the_one_the_client_is_told(
    servers: Servers,
) -> None:
    gw = servers.gateway(GatewaySettings(eject_s=600))
    gw.publish(endpoint("echo", ReplicaRoute("dead", "127.0.0.1", dead_port(), revision=1)))
    with gw.client() as client:
        r = client.post(
            "/endpoints/echo/", json={"inputs": 1}, headers={"x-podium-wait-timeout": "0.3"}
        )
    assert r.status_code == 502
    assert gw.failures, "the refused replica was reported"
    for rid, reason in gw.failures:
        assert rid == "dead"
        assert isinstance(reason, str) and reason.strip()
    # The operator's reason (the failure hook) is the transport's, as the client saw it.
    last_reason = gw.failures[-1][1]
    assert r.json()["detail"] == f"endpoint 'echo': no replica could be reached ({last_reason})"


def test_a_streamed_upload_over_the_limit_is_a_413_with_the_limit(servers: Servers) -> None:
    """No content-length: the body streams to the replica until it passes the limit, and
    the answer is still the 413 a client gets for a body refused before any upload."""
    (replica,) = servers.replicas(1)
    gw = servers.gateway(GatewaySettings(max_body_bytes=5000, retry_body_bytes=1000))
    gw.publish(endpoint("echo", replica.route))

    def body() -> Iterator[bytes]:
        yield b"u" * 2000  # over retry_body_bytes: the upload to the replica begins
        assert wait_until(lambda: replica.app.requests == 1)
        yield from chunks(10)  # then the body passes the limit mid-upload

    with gw.client() as client:
        r = client.post("/endpoints/echo/upload", content=body(), headers={"x-request-id": "l1"})
    assert r.status_code == 413
    assert r.headers["x-request-id"] == "l1"
    problem = r.json()
    assert problem["title"] == TooLarge.title
    assert problem["detail"] == "request body is larger than the limit of 5000 bytes"
    assert (problem["endpoint"], problem["limit"]) == ("echo", 5000)


async def _garbage_mid_upload(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    # Reads the head and part of the body (the upload is under way), answers garbage, and
    # reads on until the gateway hangs up (no reset: it sees the garbage, not a lost link).
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(1500)
    writer.write(b"SPDY/9 what\r\n\r\n")
    await writer.drain()
    while await reader.read(65536):
        pass


def test_a_bad_response_during_a_streamed_upload_says_what_was_wrong(servers: Servers) -> None:
    gw = servers.gateway(GatewaySettings(retry_body_bytes=1000))
    with RawServer(_garbage_mid_upload) as raw, gw.client() as client:
        gw.publish(endpoint("ep", ReplicaRoute("raw", "127.0.0.1", raw.port, revision=1)))
        r = client.post("/endpoints/ep/x", content=chunks(20), headers={"x-request-id": "g1"})
    assert r.status_code == 502
    assert r.headers["x-request-id"] == "g1"
    problem = r.json()
    assert (problem["title"], problem["endpoint"]) == ("Bad gateway", "ep")
    # Usually the garbage is seen while the body still uploads; on a loaded machine aiohttp
    # may finish the upload first and report it as a bad response. Either way the detail
    # goes on with what was wrong, in the transport's words (not a placeholder).
    detail = problem["detail"]
    prefixes = (
        "endpoint 'ep': the replica failed during the upload: ",
        "endpoint 'ep': bad response from a replica: ",
    )
    prefix = next((p for p in prefixes if detail.startswith(p)), None)
    assert prefix is not None, detail
    reason = detail.removeprefix(prefix)
    expected = {
        "http1": "invalid HTTP response from the replica: ",
        "aiohttp": "ClientResponseError: ",
    }
    assert reason.startswith(expected[servers.transport])
    assert gw.failures == []


UPLOAD = 8_000_000  # more than the sockets between client and replica hold


async def _answers_while_reading(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    # Starts a streamed answer once part of the body is in, reads the rest of the body while
    # the answer is open, then ends it saying how many body bytes arrived.
    await reader.readuntil(b"\r\n\r\n")
    got = len(await reader.readexactly(1500))
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\nstarted\n\r\n")
    await writer.drain()
    # If the rest of the body never comes, the count below says so.
    with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError):
        got += len(await asyncio.wait_for(reader.readexactly(UPLOAD - 1500), 10))
    last = b"got %d\n" % got
    writer.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(last), last))
    await writer.drain()


def test_a_streamed_answer_that_starts_mid_upload_still_gets_the_whole_body(
    servers: Servers,
) -> None:
    """While the client's body is still uploading, nothing but the upload reads it (a
    watcher for the client leaving would swallow body chunks)."""
    gw = servers.gateway(GatewaySettings(retry_body_bytes=1000))
    body = (b"u" * 40_000 for _ in range(UPLOAD // 40_000))
    with (
        RawServer(_answers_while_reading) as raw,
        httpx.Client(base_url=gw.url, timeout=30) as client,
    ):
        gw.publish(endpoint("ep", ReplicaRoute("raw", "127.0.0.1", raw.port, revision=1)))
        r = client.post("/endpoints/ep/x", content=body, headers={"content-length": str(UPLOAD)})
    assert r.status_code == 200
    assert r.content == b"started\ngot %d\n" % UPLOAD
