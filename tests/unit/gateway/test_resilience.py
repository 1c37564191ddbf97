"""Failing replicas: retries elsewhere, ejection, 502 and 504.

A request that meets a refused or reset connection is re-sent to another replica within the
same pass through the proxy, and `podium_gateway_retries` counts it. Without that retry the
client would still get a 200 (the gateway waits for a newer routing table, up to 1 s, then
admits the request again and the ejected replica is skipped), so these tests assert the
count of retries, not only the status and the replica that answered.
"""

from __future__ import annotations

import threading

from podium.core.routing import ReplicaRoute
from podium.core.settings import GatewaySettings
from tests.unit.gateway.conftest import RunningGateway, Servers, endpoint
from tests.unit.gateway.servers import dead_port, wait_until


def counter(gw: RunningGateway, name: str, endpoint: str = "echo") -> float | None:
    """A per-endpoint counter as `/metrics` shows it."""
    labels = {"endpoint": endpoint}
    return gw.gateway.metrics_registry.get_sample_value(f"podium_gateway_{name}_total", labels)


def test_refused_replica_is_retried_elsewhere_and_ejected(servers: Servers) -> None:
    (live,) = servers.replicas(1)
    dead = ReplicaRoute("dead", "127.0.0.1", dead_port(), revision=1)
    gw = servers.gateway(GatewaySettings(eject_s=600))
    gw.publish(endpoint("echo", live.route, dead))
    statuses = []
    with gw.client() as client:
        # Until the balancer has tried the dead one (each pick is 50/50 while both are fresh).
        for _ in range(200):
            r = client.post("/endpoints/echo/", json={"inputs": 1})
            statuses.append(r.status_code)
            assert r.json()["server"] == live.id
            if gw.failures:
                break
        assert [rid for rid, _ in gw.failures] == ["dead"]
        assert gw.gateway.balancer.is_ejected("dead")
        # Ejected: the next requests go straight to the live replica.
        statuses += [client.get("/endpoints/echo/").status_code for _ in range(20)]
    assert set(statuses) == {200}
    assert len(gw.failures) == 1
    gw.settle()
    # The one request that met the dead replica was re-sent to the live one at once.
    assert counter(gw, "replica_failures") == 1
    assert counter(gw, "retries") == 1
    assert gw.gateway.outstanding("dead") == 0
    assert gw.gateway.outstanding(live.id) == 0


def test_replica_stopped_midway_requests_retried(servers: Servers) -> None:
    a, b = servers.replicas(2)
    gw = servers.gateway(GatewaySettings(eject_s=600))
    gw.publish(endpoint("echo", a.route, b.route))
    with gw.client() as client:
        served = {client.get("/endpoints/echo/").json()["server"] for _ in range(40)}
        assert served == {a.id, b.id}  # keep-alive connections to both are pooled
        b.stop()
        statuses = []
        for _ in range(200):
            r = client.post("/endpoints/echo/x", content=b"payload")
            statuses.append(r.status_code)
            assert r.json()["server"] == a.id
            assert r.json()["body"] == "payload"
            if gw.failures:
                break
    assert set(statuses) == {200}
    assert [rid for rid, _ in gw.failures] == [b.id]
    gw.settle()
    assert gw.gateway.load_snapshot()["echo"].errors == 0
    # b's pooled connection was tried again on a new one (refused): then once to `a`.
    assert counter(gw, "replica_failures") == 1
    assert counter(gw, "retries") == 1


def test_all_replicas_unreachable_and_no_new_table_is_502(servers: Servers) -> None:
    """It waits for a newer routing table as long as the wait timeout allows (here 0.3 s),
    then tries the replicas it has once more."""
    gw = servers.gateway()
    dead = [ReplicaRoute(f"d{i}", "127.0.0.1", dead_port(), revision=1) for i in range(2)]
    gw.publish(endpoint("echo", *dead))
    with gw.client() as client:
        r = client.post(
            "/endpoints/echo/", json={"inputs": 1}, headers={"x-podium-wait-timeout": "0.3"}
        )
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["endpoint"] == "echo"
    detail = r.json()["detail"]
    assert detail.startswith("endpoint 'echo': no replica could be reached (")
    assert "connect" in detail.lower()  # the last failure's reason, as the transport gave it
    assert {rid for rid, _ in gw.failures} == {"d0", "d1"}
    gw.settle()
    assert gw.gateway.load_snapshot()["echo"].errors == 1
    # Two passes (before and after the wait), each trying one replica then the other.
    assert counter(gw, "replica_failures") == 4
    assert counter(gw, "retries") == 2


def test_unreachable_replicas_wait_for_the_next_table(servers: Servers) -> None:
    """The only replica refuses (it crashed, or was stopped as the table changed): the
    request waits for the controller's next table and is served by the new replica."""
    (live,) = servers.replicas(1)
    gw = servers.gateway()
    dead = ReplicaRoute("dead", "127.0.0.1", dead_port(), revision=1)
    gw.publish(endpoint("echo", dead))

    def replace_on_failure() -> None:
        assert wait_until(lambda: bool(gw.failures))
        gw.publish(endpoint("echo", live.route))

    fixer = threading.Thread(target=replace_on_failure)
    fixer.start()
    with gw.client() as client:
        r = client.post("/endpoints/echo/x", content=b"payload")
    fixer.join()
    assert r.status_code == 200
    assert r.json()["server"] == live.id
    assert r.json()["body"] == "payload"
    gw.settle()
    assert gw.gateway.load_snapshot()["echo"].errors == 0
    assert counter(gw, "retries") == 0  # no other replica: admitted again, not retried


def test_slow_replica_is_504_and_released(servers: Servers) -> None:
    (replica,) = servers.replicas(1)
    gw = servers.gateway()
    gw.publish(endpoint("echo", replica.route, timeout_s=0.2))
    with gw.client() as client:
        r = client.get("/endpoints/echo/slow")
    assert r.status_code == 504
    assert r.json()["title"] == "Upstream timeout"
    # The gateway hung up on the replica, which sees its client leave.
    assert replica.app.disconnected.wait(10)
    gw.settle()
    assert gw.gateway.outstanding(replica.id) == 0
    assert gw.failures == []  # a slow replica is not ejected
