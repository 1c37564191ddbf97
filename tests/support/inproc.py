"""The real Podium server app in-process, for the SDK and CLI unit tests.

`InProcessPodium` is `podium.server.app.Podium` itself (the API's routes, validation and
problem+json errors, the gateway with its access stage, a migrated SQLite store and an
artifact store in a temp home; auth on, with the admin token it makes in
`home/credentials`: `token`, `headers`), served over loopback HTTP by uvicorn in a thread,
so the SDK and the CLI talk to it exactly as to `podium up`. What it leaves out is what
needs replica processes: its controller is never started. A test plays the controller's
part where it must, on the same store and routing table the controller writes (`ready`,
`fail`, `gone`), and the replicas behind the gateway are one small echo server
(`EchoReplica`).

One uvicorn server per session serves every test: `Served.fresh(home)` swaps in a new
`Podium` (a new home, an empty store) for each test; it takes a few milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from podium.core.errors import OutOfMemory
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.problems import error_doc
from podium.core.routing import EndpointRoute, ReplicaRoute, endpoint_route
from podium.core.settings import Settings
from podium.server.app import Podium
from podium.store.records import ReplicaRecord

Scope = dict[str, Any]


# ---------------------------------------------------------------- serving in a thread


@contextmanager
def served(app: Any) -> Iterator[tuple[str, int]]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yield (host, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start serving {app!r}")
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class EchoReplica:
    """What the gateway forwards to: answers `{"outputs": inputs, "path": path}`, a 500
    problem for `{"inputs": "boom"}` (a model that raised), the replica's 507 problem for
    `{"inputs": "oom"}` (out of memory), and records each request."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []  # (path, JSON body)
        self.address = ("", 0)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        data = json.loads(body) if body else None
        self.received.append((scope["path"], data))
        inputs = data.get("inputs") if isinstance(data, dict) else data
        if inputs == "boom":
            status, answer = 500, {"status": 500, "detail": "the model raised ValueError: boom"}
        elif inputs == "oom":  # what a replica answers when a request ran out of memory
            status, answer = 507, error_doc(OutOfMemory("the replica ran out of memory"))
        else:
            status, answer = 200, {"outputs": inputs, "path": scope["path"]}
        await _json(send, status, answer)


# ---------------------------------------------------------------- the real server app


@dataclass
class InProcessPodium:
    """One test's Podium: the real server app over a fresh home, served at `url`."""

    podium: Podium
    url: str
    echo: EchoReplica  # the replica behind every ready endpoint
    requests: list[str] = field(default_factory=list)  # "METHOD /path?query", in order
    answered: list[str] = field(default_factory=list)  # the same, once an answer has begun
    authorizations: list[str] = field(default_factory=list)  # each request's, "" if none

    @property
    def settings(self) -> Settings:
        return self.podium.settings

    @property
    def token(self) -> str:
        """The admin token the server made on its fresh home (`credentials`)."""
        return self.settings.credentials_path.read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        """`Authorization: Bearer <admin token>`, for raw httpx calls."""
        return {"authorization": f"Bearer {self.token}"}

    # -- what the controller would do (it is not running here) ---------------------------

    @contextmanager
    def on_answer(self, request: str, action: Callable[[], None]) -> Iterator[None]:
        """Run `action` in a thread once the server has begun to answer a request (made
        within the block) that starts with `request`, e.g. `PATCH /api/v1/endpoints/iris`:
        the controller acting while a command waits. An error in `action` is raised when
        the block ends."""
        stop = threading.Event()
        errors: list[BaseException] = []
        start = len(self.answered)  # only answers from now on count

        def run() -> None:
            while not any(a.startswith(request) for a in self.answered[start:]):
                if stop.wait(0.01):
                    return
            try:
                action()
            except BaseException as e:  # handed to the test's thread
                errors.append(e)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(30)
        if errors:
            raise errors[0]

    def ready(self, name: str, *, log_lines: int = 5) -> list[str]:
        """The endpoint's desired replicas of its current revision are up and ready (each
        with a log of `log_lines` lines); it is running and routed to the echo replica.
        Returns the replica ids."""
        host, port = self.echo.address
        with self.podium.db.unit_of_work() as uow:
            ep = uow.endpoints.get(name)
            ids = [f"{name}-r{ep.revision}-{i:06x}" for i in range(ep.desired_replicas)]
            for rid in ids:
                log = self.settings.logs_dir / name / f"{rid}.log"  # where the backend keeps it
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text("".join(f"log line {i} of {rid}\n" for i in range(1, log_lines + 1)))
                uow.replicas.upsert(
                    ReplicaRecord(
                        replica_id=rid,
                        endpoint=name,
                        revision=ep.revision,
                        state=ReplicaState.READY,
                        host=host,
                        port=port,
                        pid=None,
                        started_at=datetime.now(UTC),
                        log_path=str(log),
                    )
                )
                uow.events.add(name, EventKind.REPLICA_READY, f"replica {rid} ready")
            self._status(uow, name, ep.status, EndpointStatus.RUNNING, "replicas ready")
        self.publish()
        return ids

    def fail(self, name: str, reason: str) -> None:
        """The endpoint's revision cannot run (e.g. its model does not load)."""
        with self.podium.db.unit_of_work() as uow:
            ep = uow.endpoints.get(name)
            for r in uow.replicas.list(endpoint=name):
                uow.replicas.delete(r.replica_id)
            self._status(uow, name, ep.status, EndpointStatus.FAILED, reason)
        self.publish()

    def gone(self, name: str) -> None:
        """A deleted endpoint's replicas have stopped: its row goes."""
        with self.podium.db.unit_of_work() as uow:
            uow.endpoints.delete(name)
        self.publish()

    def publish(self) -> None:
        """The controller's routing table, built from the store as it stands."""
        routes: dict[str, EndpointRoute] = {}
        with self.podium.db.unit_of_work(read_only=True) as uow:
            for ep in uow.endpoints.list():
                if ep.status is EndpointStatus.DELETING:
                    continue
                ready = tuple(
                    ReplicaRoute(r.replica_id, r.host, r.port, r.revision)
                    for r in uow.replicas.list(endpoint=ep.name)
                    if r.state is ReplicaState.READY
                )
                created = int(ep.created_at.timestamp())
                routes[ep.name] = endpoint_route(
                    ep.spec, ep.status, created=created, openai=None, replicas=ready
                )
        self.podium.holder.publish(routes)

    @staticmethod
    def _status(uow: Any, name: str, old: EndpointStatus, new: EndpointStatus, why: str) -> None:
        uow.endpoints.set_status(name, new, reason=why if new is EndpointStatus.FAILED else None)
        uow.events.add(name, EventKind.STATUS, f"status {old.value} → {new.value}: {why}")


class Served:
    """The session's uvicorn server: dispatches to the current test's `Podium`, records
    each request, starts that Podium's gateway in the serving loop on first use."""

    def __init__(self) -> None:
        self.current: InProcessPodium | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: set[int] = set()
        self._lock: asyncio.Lock | None = None
        self.url = ""
        self.echo = EchoReplica()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            self._loop = asyncio.get_running_loop()
            self._lock = asyncio.Lock()
            await _lifespan(receive, send)
            return
        current = self.current
        if current is None:
            await _json(send, 503, {"status": 503, "detail": "no test is running"})
            return
        assert self._lock is not None
        async with self._lock:
            if id(current.podium) not in self._started:
                await current.podium.gateway.startup()
                self._started.add(id(current.podium))
        query = scope.get("query_string", b"").decode()
        line = f"{scope['method']} {scope['path']}" + (f"?{query}" if query else "")
        current.requests.append(line)
        headers = dict(scope.get("headers", ()))
        current.authorizations.append(headers.get(b"authorization", b"").decode("latin-1"))

        async def answer(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.start":
                current.answered.append(line)

        await current.podium(scope, receive, answer)

    def fresh(self, home: Path) -> InProcessPodium:
        """A new Podium on `home` (the previous one is shut down)."""
        self.close_current()
        port = int(self.url.rsplit(":", 1)[1])
        podium = Podium(Settings(home=home, port=port))
        podium.api.state.podium.log_poll_s = 0.05  # `logs -f` looks for new lines often
        self.echo.received.clear()
        self.current = InProcessPodium(podium, self.url, self.echo)
        return self.current

    def close_current(self) -> None:
        current, self.current = self.current, None
        if current is None or self._loop is None:
            return
        podium = current.podium
        if id(podium) in self._started:
            self._started.discard(id(podium))
            asyncio.run_coroutine_threadsafe(podium.gateway.shutdown(), self._loop).result(30)
        asyncio.run(podium.backend.close(stop_replicas=True))  # it started nothing
        podium.db.dispose()


@contextmanager
def serving() -> Iterator[Served]:
    """The session's server and echo replica."""
    dispatcher = Served()
    with served(dispatcher.echo) as address, served(dispatcher) as (host, port):
        dispatcher.url = f"http://{host}:{port}"
        dispatcher.echo.address = address
        try:
            yield dispatcher
        finally:
            dispatcher.close_current()


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _json(send: Any, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
