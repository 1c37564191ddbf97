"""Responses stream through unbuffered; a client that leaves releases the replica."""

from __future__ import annotations

import pytest

from tests.unit.gateway.conftest import Replica, RunningGateway, Servers, endpoint
from tests.unit.gateway.servers import wait_until


@pytest.fixture
def gw(servers: Servers) -> tuple[RunningGateway, Replica]:
    (replica,) = servers.replicas(1)
    running = servers.gateway()
    running.publish(endpoint("echo", replica.route))
    return running, replica


def test_first_chunk_arrives_before_the_replica_finishes(
    gw: tuple[RunningGateway, Replica],
) -> None:
    running, replica = gw
    # The read timeout only guards against a hang: a buffering gateway would send nothing
    # until the replica finished, and the replica finishes only after chunk 1 arrived here.
    with running.client() as client, client.stream("GET", "/endpoints/echo/stream") as r:
        assert r.status_code == 200
        assert r.headers["x-request-id"]
        chunks = r.iter_raw()
        first = next(chunks)
        assert first == b"chunk-1\n"
        assert running.gateway.outstanding(replica.id) == 1
        replica.app.release()
        rest = b"".join(chunks)
    assert rest == b"chunk-2\nend\n"
    assert wait_until(lambda: running.gateway.outstanding(replica.id) == 0)
    assert running.gateway.load_snapshot()["echo"].in_flight == 0


def test_client_leaving_mid_stream_releases_the_replica(
    gw: tuple[RunningGateway, Replica],
) -> None:
    running, replica = gw
    with running.client() as client, client.stream("GET", "/endpoints/echo/stream") as r:
        assert next(r.iter_raw()) == b"chunk-1\n"
        # Leaving the block closes the unfinished response, and with it the connection.
    assert replica.app.disconnected.wait(10)
    assert wait_until(lambda: running.gateway.outstanding(replica.id) == 0)
    running.settle()
    load = running.gateway.load_snapshot()["echo"]
    assert load.in_flight == 0
    assert load.errors == 0
    assert load.succeeded == 0  # nobody got the answer: no success of its revision


def test_many_streams_in_parallel_then_counts_back_to_zero(
    gw: tuple[RunningGateway, Replica],
) -> None:
    running, replica = gw
    with running.client() as client:
        streams = [client.stream("GET", "/endpoints/echo/stream") for _ in range(5)]
        # Keep each iterator: dropping one unfinished closes its connection.
        readers = [s.__enter__().iter_raw() for s in streams]
        assert [next(r) for r in readers] == [b"chunk-1\n"] * 5
        assert running.gateway.outstanding(replica.id) == 5
        replica.app.release()
        bodies = [b"".join(r) for r in readers]
        for s in streams:
            s.__exit__(None, None, None)
    assert bodies == [b"chunk-2\nend\n"] * 5
    assert wait_until(lambda: running.gateway.outstanding(replica.id) == 0)


def big(total: int) -> bytes:
    return b"".join(
        bytes([start // 65536 % 251]) * min(65536, total - start)
        for start in range(0, total, 65536)
    )


def test_large_response_streams_through_intact(gw: tuple[RunningGateway, Replica]) -> None:
    running, _ = gw
    total = 5 * 1024 * 1024 + 123
    with running.client() as client:
        r = client.get(f"/endpoints/echo/big?{total}")
        again = client.get("/endpoints/echo/big?10")  # the connection is reusable after
    assert r.status_code == 200
    assert r.content == big(total)
    assert again.content == big(10)


def test_large_upload_streams_through_intact(gw: tuple[RunningGateway, Replica]) -> None:
    running, _ = gw
    payload = bytes(range(256)) * 12_000  # 3 MB: over retry_body_bytes, streamed
    with running.client() as client:
        r = client.post("/endpoints/echo/upload", content=payload)
    assert r.status_code == 200
    assert r.json()["body"].encode("latin-1") == payload
