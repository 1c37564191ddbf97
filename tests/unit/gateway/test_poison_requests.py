"""A request that kills the replica serving it is answered 502 and never sent to another.

Stand-in replicas are hand-written servers that "crash" on a poison body: they stop
listening and close every connection, as the kernel does for a dead process. Each runs
once per transport (http1, aiohttp).
"""

from __future__ import annotations

import asyncio
import socket
import struct

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


def test_poison_request_crashes_one_replica_and_gets_a_502_saying_so(servers: Servers) -> None:
    gw = servers.gateway()
    with CrashingServer("a") as a, CrashingServer("b") as b, gw.client() as client:
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


def test_poison_on_a_reused_connection_is_not_sent_elsewhere(servers: Servers) -> None:
    gw = servers.gateway()
    with CrashingServer("a") as a, CrashingServer("b") as b, gw.client() as client:
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
    gw = servers.gateway()
    with CrashingServer("a") as a, CrashingServer("b") as b, gw.client() as client:
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
