"""A request that kills the replica serving it is answered 502 and never sent to another.

Stand-in replicas are hand-written servers that "crash" on a poison body: they stop
listening and close every connection, as the kernel does for a dead process. Each runs
once per transport (http1, aiohttp).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import replace

from podium.core.routing import ReplicaRoute
from tests.unit.gateway.conftest import Servers, endpoint
from tests.unit.gateway.servers import RawServer, read_request

POISON = b"poison"


class CrashingServer(RawServer):
    """Answers 200 "ok" (keep-alive) until it reads a poison body, then dies."""

    def __init__(self, name: str) -> None:
        super().__init__(self._handle)
        self.name = name
        self.poisoned = 0
        self.served = 0
        self._listener: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._listener = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._listener.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._listener:
            await self._stop.wait()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        self._writers.add(writer)
        while request := await read_request(reader):
            if request.endswith(POISON) or request.startswith(b"GET /poison "):
                self.poisoned += 1
                assert self._listener is not None
                self._listener.close()  # the process is gone: connections are refused
                for w in self._writers:
                    w.close()
                return
            self.served += 1
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    @property
    def route(self) -> ReplicaRoute:
        return ReplicaRoute(self.name, "127.0.0.1", self.port, revision=1)


class Deaths:
    """The backend's `exit_cause` as the gateway asks it: a poisoned server has died."""

    def __init__(self) -> None:
        self.servers: list[CrashingServer] = []

    async def __call__(self, replica_id: str) -> str | None:
        dead = [s for s in self.servers if s.name == replica_id and s.poisoned]
        return "exit code -11" if dead else None


def test_poison_request_crashes_one_replica_and_gets_a_502_saying_so(servers: Servers) -> None:
    deaths = Deaths()
    gw = servers.gateway(why_failed=deaths)
    with CrashingServer("a") as a, CrashingServer("b") as b, gw.client() as client:
        deaths.servers += [a, b]
        gw.publish(endpoint("ep", a.route, b.route))
        r = client.post("/endpoints/ep/predict", content=POISON)
        assert a.poisoned + b.poisoned == 1  # not re-sent to the other replica
        assert r.status_code == 502
        assert r.headers["content-type"] == "application/problem+json"
        assert "crashed while serving this request" in r.json()["detail"]
        dead = a if a.poisoned else b
        assert r.json()["replica"] == dead.name
        assert [rid for rid, _ in gw.failures] == [dead.name]
        # The other replica serves everything that follows.
        assert {client.post("/endpoints/ep/x", content=b"x").status_code for _ in range(10)} == {
            200
        }
    gw.settle()
    load = gw.gateway.load_snapshot()["ep"]
    assert load.errors == 1


async def _close_after_reading(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    # Alive, but closes the connection after reading the whole request, without answering.
    await read_request(reader)
    writer.close()


def test_a_live_replica_that_closes_without_answering_is_not_called_crashed(
    servers: Servers,
) -> None:
    gw = servers.gateway(why_failed=Deaths())  # the backend knows of no exit
    with RawServer(_close_after_reading) as raw, gw.client() as client:
        gw.publish(endpoint("ep", ReplicaRoute("alive", "127.0.0.1", raw.port, revision=1)))
        r = client.post("/endpoints/ep/predict", content=b"payload")
        assert r.status_code == 502
        detail = r.json()["detail"]
        assert "closed the connection without answering this request" in detail
        assert "it was not re-sent: it may have reached the model" in detail
        assert "crash" not in detail and r.json()["cause"] == "closed"
    gw.settle()
    registry = gw.gateway.metrics_registry
    labels = {"endpoint": "ep"}
    assert registry.get_sample_value("podium_gateway_replica_crashes_total", labels) == 0
    assert registry.get_sample_value("podium_gateway_replica_failures_total", labels) == 1


def test_successes_are_counted_per_revision(servers: Servers) -> None:
    old, new = servers.replicas(2)
    gw = servers.gateway()
    with gw.client() as client:
        gw.publish(endpoint("ep", replace(old.route, revision=1)))
        for _ in range(3):
            assert client.post("/endpoints/ep/x", content=b"x").status_code == 200
        gw.publish(endpoint("ep", replace(new.route, revision=2)))
        assert client.post("/endpoints/ep/x", content=b"x").status_code == 200
    gw.settle()
    load = gw.gateway.load_snapshot()["ep"]
    assert load.succeeded == 4 and dict(load.succeeded_by_revision) == {1: 3, 2: 1}


def test_poison_on_a_reused_connection_is_not_sent_elsewhere(servers: Servers) -> None:
    deaths = Deaths()
    gw = servers.gateway(why_failed=deaths)
    with CrashingServer("a") as a, CrashingServer("b") as b, gw.client() as client:
        deaths.servers += [a, b]
        gw.publish(endpoint("ep", a.route, b.route))
        for _ in range(20):  # pooled keep-alive connections to both
            assert client.post("/endpoints/ep/x", content=b"x").status_code == 200
        assert a.served and b.served
        r = client.post("/endpoints/ep/predict", content=POISON)
        assert a.poisoned + b.poisoned == 1
        assert r.status_code == 502
        assert "crashed while serving this request" in r.json()["detail"]
    gw.settle()


def test_idempotent_poison_on_a_reused_connection_is_not_sent_elsewhere(
    servers: Servers,
) -> None:
    # GET: aiohttp itself retries it once on a new connection; that retry must not count
    # as "never sent" when the replica it reached first is gone.
    deaths = Deaths()
    gw = servers.gateway(why_failed=deaths)
    with CrashingServer("a") as a, CrashingServer("b") as b, gw.client() as client:
        deaths.servers += [a, b]
        gw.publish(endpoint("ep", a.route, b.route))
        for _ in range(20):
            assert client.get("/endpoints/ep/x").status_code == 200
        r = client.get("/endpoints/ep/poison")
        assert a.poisoned + b.poisoned == 1
        assert r.status_code == 502
        assert "crashed while serving this request" in r.json()["detail"]
    gw.settle()


async def _reset_unread(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    # Dies with the request unread in its socket: the kernel answers with a reset.
    sock = writer.get_extra_info("socket")
    await asyncio.sleep(0.2)  # the request is in the socket's buffer by now
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def test_request_reset_unread_goes_to_another_replica(servers: Servers) -> None:
    (live,) = servers.replicas(1)
    gw = servers.gateway()
    with RawServer(_reset_unread) as raw, gw.client() as client:
        dead = ReplicaRoute("dead", "127.0.0.1", raw.port, revision=1)
        gw.publish(endpoint("ep", dead, live.route))
        for _ in range(10):
            r = client.post("/endpoints/ep/x", content=b"payload")
            assert r.status_code == 200
            assert r.json()["server"] == live.id
    gw.settle()
    labels = {"endpoint": "ep"}
    retries = gw.gateway.metrics_registry.get_sample_value("podium_gateway_retries_total", labels)
    assert retries == len(gw.failures)  # each reset was re-sent to the live replica
