"""Replies uvicorn never makes, from a hand-written server: each transport copes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from podium.core.routing import ReplicaRoute
from podium.gateway.transport import WHOLE_UP_TO
from tests.unit.gateway.conftest import RunningGateway, Servers, endpoint
from tests.unit.gateway.servers import RawHandler, RawServer, read_request


def route_to(gw: RunningGateway, server: RawServer) -> None:
    gw.publish(endpoint("raw", ReplicaRoute("raw", "127.0.0.1", server.port, revision=1)))


async def until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n")
    writer.write(b"no length, ends at EOF")
    await writer.drain()


def test_body_without_length_ends_at_eof(servers: Servers) -> None:
    gw = servers.gateway()
    with RawServer(until_eof) as raw, gw.client() as client:
        route_to(gw, raw)
        for _ in range(3):
            r = client.get("/endpoints/raw/")
            assert r.status_code == 200
            assert r.text == "no length, ends at EOF"
    assert gw.failures == []


async def interim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while await read_request(reader):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\nx-real: yes\r\n\r\nok")
        await writer.drain()


def test_interim_1xx_response_is_skipped(servers: Servers) -> None:
    gw = servers.gateway()
    with RawServer(interim) as raw, gw.client() as client:
        route_to(gw, raw)
        for _ in range(3):
            r = client.post("/endpoints/raw/", content=b"{}")
            assert (r.status_code, r.text, r.headers["x-real"]) == (201, "ok", "yes")


async def head_with_length(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    while request := await read_request(reader):
        if request.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nget")
        await writer.drain()


def test_head_response_has_no_body(servers: Servers) -> None:
    gw = servers.gateway()
    with RawServer(head_with_length) as raw, gw.client() as client:
        route_to(gw, raw)
        r = client.head("/endpoints/raw/")
        assert r.status_code == 200
        assert r.headers["content-length"] == "1234"
        assert client.get("/endpoints/raw/").text == "get"
        assert client.head("/endpoints/raw/").status_code == 200


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    await read_request(reader)
    writer.write(b"SPDY/9 what\r\n\r\n")
    await writer.drain()


def test_invalid_response_is_502(servers: Servers) -> None:
    gw = servers.gateway()
    with RawServer(garbage) as raw, gw.client() as client:
        route_to(gw, raw)
        r = client.get("/endpoints/raw/")
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"


def truncated(length: int) -> RawHandler:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\nonly part" % length)
        await writer.drain()

    return answer


def test_large_body_cut_short_drops_the_client_connection(servers: Servers) -> None:
    gw = servers.gateway()
    with RawServer(truncated(WHOLE_UP_TO + 1)) as raw, gw.client() as client:
        route_to(gw, raw)
        with pytest.raises(httpx.RemoteProtocolError):  # not passed on as complete
            client.get("/endpoints/raw/")
    gw.settle()


@pytest.mark.parametrize("length", [27, WHOLE_UP_TO])
def test_small_body_cut_short_is_a_502_that_says_so(servers: Servers, length: int) -> None:
    # A replica killed between writing its answer's head and its body (uvicorn writes them
    # apart) once cut the client's connection after a 200 head: a small answer is collected
    # whole first, so the client gets a problem it can read, and nothing is re-sent.
    gw = servers.gateway()
    with RawServer(truncated(length)) as raw, gw.client() as client:
        route_to(gw, raw)
        r = client.post("/endpoints/raw/", content=b"x")
        assert r.status_code == 502
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["cause"] == "closed"
        assert problem["replica"] == "raw"
        assert "closed the connection without answering" in problem["detail"]
        assert raw.connections == 1  # taken by the replica: never re-sent
    gw.settle()
    assert [replica for replica, _ in gw.failures] == ["raw"]


async def closes_second_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    # Answers the first request on each connection, then hangs up on the next one, like
    # a replica whose keep-alive timer fired just as the gateway reused the connection.
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    await writer.drain()
    await read_request(reader)


def test_stale_keep_alive_is_retried_on_a_new_connection(servers: Servers) -> None:
    gw = servers.gateway()
    with RawServer(closes_second_request) as raw, gw.client() as client:
        route_to(gw, raw)
        # POST: not retried by aiohttp itself, so this is the gateway's own retry.
        statuses = [client.post("/endpoints/raw/", content=b"x").status_code for _ in range(5)]
    if servers.transport == "http1":
        assert statuses == [200] * 5
        assert gw.failures == []  # the replica was fine: not ejected
    else:  # aiohttp cannot tell a stale connection from a failing replica
        assert statuses[0] == 200
        assert set(statuses) <= {200, 502}
