"""The gateway depends on the `RoutingSource` Protocol only: it serves, holds and releases
requests over a second, trivial implementation, as it would over a PostgreSQL one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from podium.core.phases import EndpointStatus
from podium.core.routing import (
    EndpointRoute,
    RoutingSource,
    RoutingTable,
    TableListener,
)
from tests.unit.gateway.conftest import Replica, Servers
from tests.unit.gateway.servers import wait_until


class PlainSource:
    """A `RoutingSource` with none of the in-process one's machinery (no API merge, no
    condition variable): the table in an attribute, listeners told after each swap."""

    def __init__(self) -> None:
        self.table = RoutingTable()
        self._listeners: list[TableListener] = []
        self._lock = threading.Lock()

    def publish(self, endpoints: Mapping[str, EndpointRoute]) -> RoutingTable:
        with self._lock:
            self.table = RoutingTable(self.table.version + 1, dict(endpoints))
            table, listeners = self.table, list(self._listeners)
        for listener in listeners:
            listener(table)
        return table

    def add(self, route: EndpointRoute) -> None:
        self.publish({**self.table.endpoints, route.name: route})

    def remove(self, name: str) -> None:
        self.publish({k: v for k, v in self.table.endpoints.items() if k != name})

    def subscribe(self, listener: TableListener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def wait_newer(self, version: int, timeout: float) -> RoutingTable:
        deadline = time.monotonic() + timeout
        while self.table.version <= version and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.table


def _source(source: PlainSource) -> RoutingSource:  # mypy: it is a RoutingSource
    return source


@pytest.fixture
def setup() -> Iterator[tuple[Servers, Replica]]:
    servers = Servers("http1")
    (replica,) = servers.replicas(1)
    yield servers, replica
    servers.close()


def test_the_gateway_serves_and_releases_held_requests_from_another_source(
    setup: tuple[Servers, Replica],
) -> None:
    servers, replica = setup
    source = PlainSource()
    gw = servers.gateway(routing=_source(source))
    source.add(EndpointRoute("e", EndpointStatus.PENDING))  # the API's add: no replica yet
    with gw.client() as client, ThreadPoolExecutor(1) as pool:
        held = pool.submit(
            client.post,
            "/v1/embeddings",
            content=json.dumps({"model": "e", "input": "x"}).encode(),
            headers={"x-podium-wait-timeout": "20"},
        )
        assert wait_until(lambda: "e" in gw.gateway.load_snapshot()), "never reached"
        assert wait_until(lambda: gw.gateway.load_snapshot()["e"].held == 1)
        assert gw.woken == ["e"]  # held with no replica: the controller was woken
        # The controller's table arrives through the source's listeners: the request goes.
        source.publish({"e": EndpointRoute("e", EndpointStatus.RUNNING, (replica.route,))})
        r = held.result(timeout=20)
        assert r.status_code == 200
        assert r.json()["server"] == replica.id
        assert client.get("/endpoints/e/x").json()["path"] == "/x"
        source.remove("e")
        gone = client.get("/endpoints/e/x")
        assert gone.status_code == 404
        assert gone.json()["detail"] == "endpoint 'e' not found"
