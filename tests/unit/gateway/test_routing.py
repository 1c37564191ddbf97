"""Replica choice over real servers, table changes, load and metrics."""

from __future__ import annotations

import threading

from prometheus_client import generate_latest

from tests.unit.gateway.conftest import Servers, endpoint
from tests.unit.gateway.servers import wait_until


def test_busy_replica_is_avoided(servers: Servers) -> None:
    a, b = servers.replicas(2)
    gw = servers.gateway()
    gw.publish(endpoint("echo", a.route, b.route))
    results: list[int] = []
    with gw.client() as client:
        slow = threading.Thread(
            target=lambda: results.append(client.get("/endpoints/echo/slow").status_code)
        )
        slow.start()
        assert wait_until(lambda: a.app.holding.is_set() or b.app.holding.is_set())
        busy, idle = (a, b) if a.app.holding.is_set() else (b, a)
        assert gw.gateway.outstanding(busy.id) == 1
        with gw.client() as other:
            served = [other.get("/endpoints/echo/").json()["server"] for _ in range(20)]
        assert served == [idle.id] * 20
        busy.app.release()
        slow.join(10)
    assert results == [200]
    gw.settle()
    assert gw.gateway.outstanding(a.id) == gw.gateway.outstanding(b.id) == 0


def test_publishing_a_table_switches_routes(servers: Servers) -> None:
    a, b = servers.replicas(2)
    gw = servers.gateway()
    with gw.client() as client:
        assert client.get("/endpoints/echo/").status_code == 404
        gw.publish(endpoint("echo", a.route))
        assert {client.get("/endpoints/echo/").json()["server"] for _ in range(5)} == {a.id}
        gw.publish(endpoint("echo", b.route))
        assert {client.get("/endpoints/echo/").json()["server"] for _ in range(5)} == {b.id}
        gw.publish(endpoint("other", a.route))
        assert client.get("/endpoints/echo/").status_code == 404
        assert client.get("/endpoints/other/").json()["server"] == a.id


def test_load_snapshot_and_metrics(servers: Servers) -> None:
    (replica,) = servers.replicas(1)
    gw = servers.gateway()
    gw.publish(endpoint("echo", replica.route))
    with gw.client() as client:
        for _ in range(3):
            assert client.post("/endpoints/echo/", json={"inputs": 1}).status_code == 200
        assert client.get("/endpoints/nope/").status_code == 404
        assert client.get("/nowhere").status_code == 404  # not a gateway path at all
    gw.settle()
    load = gw.gateway.load_snapshot()
    assert set(load) == {"echo"}
    assert (load["echo"].requests, load["echo"].in_flight, load["echo"].errors) == (3, 0, 0)
    text = generate_latest(gw.gateway.metrics_registry).decode()
    assert 'podium_gateway_requests_total{code="2xx",endpoint="echo"} 3.0' in text
    assert 'podium_gateway_request_duration_seconds_count{endpoint="echo"} 3.0' in text
    assert 'podium_gateway_in_flight{endpoint="echo"} 0.0' in text
    assert "podium_gateway_unrouted_requests_total 2.0" in text
