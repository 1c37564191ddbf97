"""`GET /api/v1/live`: the real API over a real store, with a scripted gateway (the live
source the server wires to its embedded gateway) and a real routing source and buffer."""

from __future__ import annotations

import dataclasses
import time

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from podium.api.deps import GatewayLive
from podium.core.access import Scope
from podium.core.metric_names import LATENCY_BUCKETS
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.request_record import RecordBuffer
from podium.core.routing import EndpointLoad, EndpointRoute, InProcessRoutingSource, ReplicaRoute
from podium.core.service_counts import ReplicaCounts, ServiceCounts, ServiceSnapshot
from podium.core.settings import ObservabilitySettings
from podium.store import Database
from tests.support.live import ScriptedGateway, buckets, insert, point
from tests.unit.api.conftest import add_replica, make_token, push, spec

LIVE = "/api/v1/live"


IRIS = ServiceCounts(
    requests=12,
    by_class=(1, 0, 9, 0, 0, 2),
    latency_sum=0.6,
    latency_buckets=buckets(b3=10, b6=2),
    bytes_in=1200,
    bytes_out=3400,
)
REPLICA = ServiceCounts(requests=11, by_class=(0, 0, 9, 0, 0, 2), latency_sum=0.5)


@pytest.fixture
def gateway(ctx: ApiContext) -> ScriptedGateway:
    records = RecordBuffer(capacity=2)
    for _ in range(3):
        records.offer(None)  # type: ignore[arg-type]  # the buffer keeps what it is given
    source = ScriptedGateway(
        ServiceSnapshot(
            taken_at=1234.5,
            endpoints={"iris-ep": IRIS, "gone": IRIS},
            replicas={"iris-ep-r1-a": ReplicaCounts("iris-ep", REPLICA)},
        ),
        loads={"iris-ep": EndpointLoad(in_flight=3, held=4)},
        in_flight={"iris-ep-r1-a": 2},
        records=records,
    )
    ctx.live = source
    return source


@pytest.fixture
def served(client: TestClient, ctx: ApiContext, db: Database) -> None:
    """iris-ep (2 desired; one ready replica routed, one starting) and rose (idle)."""
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert (
        client.post(
            "/api/v1/endpoints", json=spec(scaling={"min_replicas": 2, "max_replicas": 2})
        ).status_code
        == 201
    )
    assert client.post("/api/v1/endpoints", json=spec(name="rose")).status_code == 201
    add_replica(db, "iris-ep", "iris-ep-r1-a")
    add_replica(db, "iris-ep", "iris-ep-r1-b", state=ReplicaState.STARTING)
    add_replica(db, "iris-ep", "iris-ep-r0-old", state=ReplicaState.EXITED)
    routing = InProcessRoutingSource()
    route = EndpointRoute(
        "iris-ep",
        EndpointStatus.RUNNING,
        replicas=(ReplicaRoute("iris-ep-r1-a", "127.0.0.1", 9000, 1),),
    )
    routing.publish({"iris-ep": route})
    ctx.routing = routing
    now = int(time.time()) // 10 * 10
    insert(
        db,
        point("iris-ep", "", now - 20, cpu_percent=10.0, rss_bytes=1),
        point("iris-ep", "", now - 10, cpu_percent=150.0, rss_bytes=300_000_000),
        point("iris-ep", "iris-ep-r1-a", now - 10, cpu_percent=150.0, rss_bytes=300_000_000),
    )


def test_live_answers_the_gateways_counts_now(
    client: TestClient, gateway: ScriptedGateway, served: None
) -> None:
    r = client.get(LIVE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["taken_at"] == 1234.5
    assert body["latency_bounds_s"] == list(LATENCY_BUCKETS)
    assert body["records"] == {"offered": 3, "dropped": 1, "buffered": 2, "lost": 0}
    assert [e["name"] for e in body["endpoints"]] == ["iris-ep", "rose"]  # not "gone"
    iris, rose = body["endpoints"]
    assert (iris["status"], iris["ready"], iris["desired"]) == ("pending", 1, 2)
    assert (iris["in_flight"], iris["held"]) == (3, 4)
    assert iris["counts"] == {
        "requests": 12,
        "by_class": [1, 0, 9, 0, 0, 2],
        "latency_sum_s": 0.6,
        "latency_buckets": list(buckets(b3=10, b6=2)),
        "bytes_in": 1200,
        "bytes_out": 3400,
    }
    assert iris["resources"]["cpu_percent"] == 150.0  # the newest point
    assert iris["resources"]["rss_bytes"] == 300_000_000
    assert iris["resources"]["gpu_util_percent"] is None
    replicas = {r["replica_id"]: r for r in iris["replicas"]}
    assert set(replicas) == {"iris-ep-r1-a", "iris-ep-r1-b"}  # not the exited one
    ready = replicas["iris-ep-r1-a"]
    assert (ready["state"], ready["in_flight"], ready["counts"]["requests"]) == ("ready", 2, 11)
    assert ready["counts"]["by_class"][5] == 2
    assert ready["resources"]["cpu_percent"] == 150.0
    starting = replicas["iris-ep-r1-b"]
    assert (starting["counts"]["requests"], starting["resources"]["cpu_percent"]) == (0, None)
    assert rose["counts"]["requests"] == 0 and rose["replicas"] == []
    assert (rose["ready"], rose["held"], rose["resources"]["at"]) == (0, 0, None)


def test_one_endpoint_by_name(client: TestClient, gateway: ScriptedGateway, served: None) -> None:
    r = client.get(LIVE, params={"name": "iris-ep"})
    assert r.status_code == 200, r.text
    assert [e["name"] for e in r.json()["endpoints"]] == ["iris-ep"]
    missing = client.get(LIVE, params={"name": "tulip"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    too_long = client.get(LIVE, params={"name": "x" * 64})
    assert (too_long.status_code, too_long.json()["field"]) == (422, "name")


def test_records_off_is_null(client: TestClient, gateway: ScriptedGateway, served: None) -> None:
    gateway.records = None
    assert client.get(LIVE).json()["records"] is None


def test_without_a_gateway_live_is_a_503_saying_why(client: TestClient, ctx: ApiContext) -> None:
    assert ctx.live is None
    r = client.get(LIVE)
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == "live"
    assert "embedded gateway" in r.json()["detail"]


def test_a_reader_sees_only_the_projects_it_may_read(
    client: TestClient, ctx: ApiContext, db: Database, gateway: ScriptedGateway, served: None
) -> None:
    assert client.post("/api/v1/projects", json={"name": "team"}).status_code == 201
    pushed = client.post(
        "/api/v1/models/iris/versions",
        params={"filename": "m.skops", "framework": "sklearn", "project": "team"},
        content=b"v1",
        headers={"content-type": "application/octet-stream"},
    )
    assert pushed.status_code == 201, pushed.text
    assert (
        client.post("/api/v1/endpoints", json=spec(name="chat", project="team")).status_code == 201
    )
    reader = make_token(db, "team-reader", (Scope.READ,), projects=("team",), tokens=ctx.tokens)
    headers = {"Authorization": f"Bearer {reader}"}
    r = client.get(LIVE, headers=headers)
    assert r.status_code == 200, r.text
    assert [(e["project"], e["name"], e["key"]) for e in r.json()["endpoints"]] == [
        ("team", "chat", "team.chat")
    ]
    assert r.json()["records"]["dropped"] == 1  # server-wide, shown to any reader
    assert (
        client.get(LIVE, params={"project": "team", "name": "chat"}, headers=headers).json()[
            "endpoints"
        ][0]["key"]
        == "team.chat"
    )
    for params in ({"project": "default"}, {"name": "iris-ep"}):
        refused = client.get(LIVE, params=params, headers=headers)
        assert refused.status_code == 403, params
        assert "on project 'default'" in refused.json()["detail"]
    everyone = [e["key"] for e in client.get(LIVE).json()["endpoints"]]
    assert everyone == ["iris-ep", "rose", "team.chat"]


def test_the_servers_adapter_reads_a_gateway_view_and_its_buffer(
    client: TestClient, ctx: ApiContext, gateway: ScriptedGateway, served: None
) -> None:
    """`GatewayLive` is what server/app.py wires: the gateway (any `GatewayView`) and the
    records buffer beside it."""
    buffer = RecordBuffer(capacity=5)
    ctx.live = GatewayLive(gateway, records=buffer)
    body = client.get(LIVE).json()
    assert body["records"] == {"offered": 0, "dropped": 0, "buffered": 0, "lost": 0}
    iris = body["endpoints"][0]
    replica = iris["replicas"][0]
    assert (iris["counts"]["requests"], iris["held"], replica["in_flight"]) == (12, 4, 2)


def test_resources_are_read_at_the_sampled_interval(
    client: TestClient, ctx: ApiContext, db: Database, gateway: ScriptedGateway, served: None
) -> None:
    """PODIUM_METRICS_INTERVAL_S=5: the sampler's 5 s points are the resources shown."""
    ctx.settings = dataclasses.replace(
        ctx.settings, observability=ObservabilitySettings(metrics_interval_s=5)
    )
    now = int(time.time()) // 5 * 5
    insert(
        db,
        point("iris-ep", "", now - 5, resolution=5, cpu_percent=75.0, rss_bytes=7),
        point("iris-ep", "iris-ep-r1-a", now - 5, resolution=5, cpu_percent=70.0, rss_bytes=5),
    )
    iris = client.get(LIVE).json()["endpoints"][0]
    assert (iris["resources"]["cpu_percent"], iris["resources"]["rss_bytes"]) == (75.0, 7)
    replicas = {r["replica_id"]: r for r in iris["replicas"]}
    assert replicas["iris-ep-r1-a"]["resources"]["cpu_percent"] == 70.0
