"""What a client is told when its replica fails it, what the gateway counts, and which
replica it skips afterwards. Stand-in replicas are hand-written servers (see
`test_poison_requests`); each test runs once per upstream transport.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator

from podium.core.routing import ReplicaRoute
from podium.core.settings import GatewaySettings
from podium.gateway.proxy import CLOSED, CRASHED
from tests.unit.gateway.conftest import RunningGateway, Servers, endpoint
from tests.unit.gateway.servers import RawServer, read_request
from tests.unit.gateway.test_poison_requests import POISON, CrashingServer, Deaths


def counters(gw: RunningGateway, endpoint: str = "ep") -> dict[str, float | None]:
    registry, labels = gw.gateway.metrics_registry, {"endpoint": endpoint}
    return {
        name: registry.get_sample_value(f"podium_gateway_{name}_total", labels)
        for name in ("replica_failures", "replica_crashes", "retries")
    }


def test_each_crash_is_a_502_naming_the_replica_and_why_it_ended(servers: Servers) -> None:
    deaths = Deaths()
    gw = servers.gateway(GatewaySettings(eject_s=600), why_failed=deaths)
    with CrashingServer("a") as a, CrashingServer("b") as b, gw.client() as client:
        deaths.servers += [a, b]
        gw.publish(endpoint("ep", a.route, b.route))
        answers = [
            client.post("/endpoints/ep/predict", content=POISON, headers={"x-request-id": rid})
            for rid in ("p1", "p2")
        ]
    assert (a.poisoned, b.poisoned) == (1, 1)  # the first one's replica was skipped after
    for r, rid in zip(answers, ("p1", "p2"), strict=True):
        assert r.status_code == 502
        assert r.headers["x-request-id"] == rid
        problem = r.json()
        assert problem["title"] == "Replica crashed"
        assert problem["detail"] == f"endpoint 'ep': {CRASHED}: exit code -11"
        assert (problem["endpoint"], problem["cause"]) == ("ep", "exit code -11")
    assert {answers[0].json()["replica"], answers[1].json()["replica"]} == {"a", "b"}
    gw.settle()
    assert counters(gw) == {"replica_failures": 2, "replica_crashes": 2, "retries": 0}


def test_a_replica_that_closes_without_answering_is_502_then_skipped(servers: Servers) -> None:
    """The backend cannot say why (the gateway has no `why_failed` here): no crash."""
    (live,) = servers.replicas(1)
    gw = servers.gateway(GatewaySettings(eject_s=600))
    read: list[bytes] = []

    async def close_after_reading(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        # Alive, but closes the connection after reading a whole request, without answering.
        read.append(await read_request(reader))
        writer.close()

    with RawServer(close_after_reading) as raw, gw.client() as client:
        closer = ReplicaRoute("closer", "127.0.0.1", raw.port, revision=1)
        gw.publish(endpoint("ep", closer, live.route))
        for i in range(200):  # until the balancer picks the closer (50/50 while both fresh)
            r = client.post("/endpoints/ep/x", content=b"x", headers={"x-request-id": f"q{i}"})
            if r.status_code != 200:
                break
            assert r.json()["server"] == live.id
        assert r.status_code == 502
        assert r.headers["x-request-id"] == f"q{i}"
        problem = r.json()
        assert problem["title"] == "Bad gateway"
        assert problem["detail"] == f"endpoint 'ep': {CLOSED}"
        assert (problem["endpoint"], problem["replica"], problem["cause"]) == (
            "ep",
            "closer",
            "closed",
        )
        # Ejected: everything that follows goes to the live replica.
        for _ in range(20):
            r = client.post("/endpoints/ep/x", content=b"x")
            assert (r.status_code, r.json()["server"]) == (200, live.id)
    assert len(read) == 1  # it may have reached the model: not re-sent, not even to it
    assert [rid for rid, _ in gw.failures] == ["closer"]
    assert gw.failures[0][1].startswith("the connection ended without an answer (")
    gw.settle()
    assert counters(gw) == {"replica_failures": 1, "replica_crashes": 0, "retries": 0}


async def _break_off_upload(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    # Reads the head and the first 1,500 bytes of the body (more than the gateway buffers:
    # the upload is under way), then dies (reset, nothing answered).
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(1500)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def chunks(n: int, size: int = 1000) -> Iterator[bytes]:
    for _ in range(n):
        yield b"u" * size


def test_a_replica_that_breaks_off_a_streamed_upload_is_502_and_not_retried(
    servers: Servers,
) -> None:
    """A body over `retry_body_bytes` streams: once its upload began it cannot be re-sent.
    (A connection reset before the upload began is retried whole, and counted.)"""
    (live,) = servers.replicas(1)
    gw = servers.gateway(GatewaySettings(eject_s=0, retry_body_bytes=1000))  # never skipped
    with RawServer(_break_off_upload) as raw, gw.client() as client:
        breaker = ReplicaRoute("breaker", "127.0.0.1", raw.port, revision=1)
        gw.publish(endpoint("ep", breaker, live.route))
        for i in range(200):  # until the balancer picks the breaker
            r = client.post(
                "/endpoints/ep/x", content=chunks(20), headers={"x-request-id": f"u{i}"}
            )
            if r.status_code != 200:
                break
            assert (r.json()["server"], r.json()["body"]) == (live.id, "u" * 20_000)
        assert r.status_code == 502
        assert r.headers["x-request-id"] == f"u{i}"
        problem = r.json()
        assert problem["title"] == "Bad gateway"
        assert problem["endpoint"] == "ep"
        prefix = "endpoint 'ep': the replica failed during the upload: "
        assert problem["detail"].startswith(prefix)
        # Then the transport's own reason, which depends on timing ("connection reset",
        # aiohttp's "can not write request body"): present, not pinned.
        assert problem["detail"].removeprefix(prefix).strip()
    gw.settle()
    assert counters(gw)["retries"] == len(gw.failures)


def test_a_small_body_is_read_whole_and_retried(servers: Servers) -> None:
    """The same replica, a body under `retry_body_bytes`: it is re-sent to the live one."""
    (live,) = servers.replicas(1)
    gw = servers.gateway(GatewaySettings(eject_s=600, retry_body_bytes=100_000))
    with RawServer(_break_off_upload) as raw, gw.client() as client:
        breaker = ReplicaRoute("breaker", "127.0.0.1", raw.port, revision=1)
        gw.publish(endpoint("ep", breaker, live.route))
        for _ in range(200):
            r = client.post("/endpoints/ep/x", content=b"".join(chunks(20)))
            assert (r.status_code, r.json()["server"]) == (200, live.id)
            if gw.failures:
                break
    assert [rid for rid, _ in gw.failures] == ["breaker"]
    gw.settle()
    assert counters(gw)["retries"] == 1


async def _resets_an_idle_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    # The first connection answers one request, then closes as the next arrives, unread
    # (a reset: an idle keep-alive closed by the replica just then). Later ones answer.
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    await writer.drain()
    while n == 0:
        await reader.readuntil(b"\r\n")  # the next request is arriving
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return
    while await read_request(reader):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()


def test_a_reset_keep_alive_is_retried_on_a_new_connection_to_the_same_replica(
    servers: Servers,
) -> None:
    """The replica is fine (it closed an idle connection): it is neither ejected nor
    reported, and the request is not counted as a retry on another replica."""
    gw = servers.gateway(GatewaySettings(eject_s=600))
    with RawServer(_resets_an_idle_connection) as raw, gw.client() as client:
        gw.publish(endpoint("ep", ReplicaRoute("idle", "127.0.0.1", raw.port, revision=1)))
        statuses = [client.post("/endpoints/ep/x", content=b"x").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    if servers.transport == "http1":  # aiohttp cannot tell a stale connection apart
        assert gw.failures == []
        assert not gw.gateway.balancer.is_ejected("idle")
    gw.settle()
    assert counters(gw)["retries"] == 0
