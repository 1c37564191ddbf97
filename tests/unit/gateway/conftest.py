from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import pytest

from podium.core.phases import EndpointStatus
from podium.core.request_record import RecordBuffer
from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute, RoutingSource
from podium.core.settings import GatewaySettings
from podium.gateway import Gateway
from podium.gateway.aiohttp_transport import AiohttpTransport
from podium.gateway.pipeline import Stage
from podium.gateway.proxy import WhyFailed
from podium.gateway.task_store import TaskStore
from tests.unit.gateway.servers import ServerThread, Upstream, stop_all, wait_until


@dataclass
class Replica:
    """A running stand-in replica and its route."""

    app: Upstream
    server: ServerThread

    @property
    def id(self) -> str:
        return self.app.server_id

    @property
    def route(self) -> ReplicaRoute:
        return ReplicaRoute(self.app.server_id, "127.0.0.1", self.server.port, revision=1)

    def stop(self) -> None:
        self.app.release()
        self.server.stop()


@dataclass
class RunningGateway:
    gateway: Gateway
    holder: RoutingSource
    server: ServerThread
    failures: list[tuple[str, str]] = field(default_factory=list)
    woken: list[str | None] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)  # type: ignore[arg-type]

    def settle(self) -> None:
        """Wait until no request is in flight (counters drop just after the last byte)."""
        assert wait_until(
            lambda: all(load.in_flight == 0 for load in self.gateway.load_snapshot().values())
        )

    def publish(self, *routes: EndpointRoute) -> None:
        self.holder.publish({r.name: r for r in routes})


def endpoint(
    name: str,
    *replicas: ReplicaRoute,
    status: EndpointStatus = EndpointStatus.RUNNING,
    timeout_s: float = 30.0,
) -> EndpointRoute:
    return EndpointRoute(name, status, tuple(replicas), timeout_s=timeout_s)


TRANSPORTS = ["http1", "aiohttp"]


class Servers:
    """Starts stand-in replicas and gateways; `close()` releases and stops them all."""

    def __init__(self, transport: str = "http1") -> None:
        self.transport = transport
        self._replicas: list[Replica] = []
        self._gateways: list[RunningGateway] = []

    def replicas(self, n: int) -> list[Replica]:
        out = []
        for _ in range(n):
            app = Upstream(f"r{len(self._replicas)}")
            replica = Replica(app, ServerThread(app).start())
            self._replicas.append(replica)
            out.append(replica)
        return out

    def gateway(
        self,
        settings: GatewaySettings | None = None,
        *,
        why_failed: WhyFailed | None = None,
        routing: RoutingSource | None = None,
        stages: Sequence[Stage] = (),
        records: RecordBuffer | None = None,
        tasks: TaskStore | None = None,
    ) -> RunningGateway:
        holder = routing if routing is not None else InProcessRoutingSource()
        failures: list[tuple[str, str]] = []
        woken: list[str | None] = []
        settings = settings or GatewaySettings()
        gateway = Gateway(
            holder,
            settings,
            wake=woken.append,
            on_replica_failure=lambda rid, reason: failures.append((rid, reason)),
            why_failed=why_failed,
            transport=AiohttpTransport(settings) if self.transport == "aiohttp" else None,
            stages=stages,
            records=records,
            tasks=tasks,
        )
        server = ServerThread(gateway, lifespan="on").start()
        running = RunningGateway(gateway, holder, server, failures, woken)
        self._gateways.append(running)
        return running

    def close(self) -> None:
        for replica in self._replicas:
            replica.app.release()
        stop_all([g.server for g in self._gateways] + [r.server for r in self._replicas])


@pytest.fixture(params=TRANSPORTS)
def servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    """Servers for one test, once per upstream transport of the gateway."""
    s = Servers(request.param)
    yield s
    s.close()


@pytest.fixture(scope="module", params=TRANSPORTS)
def module_servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    s = Servers(request.param)
    yield s
    s.close()
