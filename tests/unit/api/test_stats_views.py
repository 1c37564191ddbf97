"""The endpoint list and detail carry what each endpoint and replica served (from known
points of the metrics history) and their uptimes, on a store with a fake clock (so the
uptimes are exact); the list reads the points in one query."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from podium.core.clock import FakeClock
from podium.core.phases import EventKind, ReplicaState
from podium.core.settings import ObservabilitySettings
from podium.store import Database
from podium.store.records import ReplicaRecord
from tests.support.live import counted_queries, insert, point
from tests.unit.api.conftest import push, spec

EP = "/api/v1/endpoints"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=50_000.0)  # 2026-01-01 + 50000 s: a multiple of 10 in unix time


@pytest.fixture
def db(sqlite_url: str, clock: FakeClock) -> Iterator[Database]:
    """The API's store, on the fake clock (overrides the conftest's)."""
    database = Database(sqlite_url, clock=clock)
    database.migrate()
    yield database
    database.dispose()


def now(clock: FakeClock) -> float:
    return clock.now().timestamp()


def replica(db: Database, clock: FakeClock, rid: str, revision: int, state: ReplicaState) -> None:
    """A replica row of iris-ep; a ready one gets its `replica_ready` event now."""
    record = ReplicaRecord(rid, "iris-ep", revision, state, "127.0.0.1", 9000, None, clock.now())
    with db.unit_of_work() as uow:
        uow.replicas.upsert(record)
        if state is ReplicaState.READY:
            uow.events.add("iris-ep", EventKind.REPLICA_READY, f"{rid} ready", {"replica_id": rid})


@pytest.fixture
def garden(client: TestClient, db: Database, clock: FakeClock) -> None:
    """iris-ep (revision 2 on cpu-medium; a ready replica of revision 1 that has served for
    100 s, one of revision 2 ready for 40 s, one starting) and rose (nothing served)."""
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post(EP, json=spec()).status_code == 201
    assert client.post(EP, json=spec(name="rose")).status_code == 201
    replica(db, clock, "iris-ep-r1-a", 1, ReplicaState.READY)
    r = client.patch(f"{EP}/iris-ep", json={"instance_type": "cpu-medium"})
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2
    assert r.json()["requests"] is None  # an answer to a change carries no figures
    clock.advance(60)
    replica(db, clock, "iris-ep-r2-b", 2, ReplicaState.READY)
    replica(db, clock, "iris-ep-r2-c", 2, ReplicaState.STARTING)
    clock.advance(40)
    t = now(clock)
    insert(
        db,
        point("iris-ep", "", t - 10, requests=50, errors_5xx=5, latency_sum_ms=1000.0),
        point("iris-ep", "", t - 200, requests=10, errors_5xx=0, latency_sum_ms=200.0),
        point("iris-ep", "", (t - 3600) // 60 * 60, resolution=60, requests=940),  # a minute
        point("iris-ep", "", (t - 3600) // 3600 * 3600, resolution=3600, requests=940),  # its hour
        point("iris-ep", "iris-ep-r1-a", t - 10, requests=30, latency_sum_ms=300.0),
        point("iris-ep", "iris-ep-r2-b", t - 10, requests=20, latency_sum_ms=600.0),
    )


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def check_iris(iris: dict[str, Any]) -> None:
    assert iris["requests"] == 1000  # the day
    assert iris["requests_per_min"] == 12.0  # 60 in the last 5 minutes
    assert iris["avg_latency_ms"] == 20.0  # 1200 ms / 60
    assert iris["error_rate"] == pytest.approx(5 / 60, abs=1e-4)
    assert iris["uptime_s"] == 100.0  # the oldest serving replica became ready 100 s ago
    replicas = {r["replica_id"]: r for r in iris["replicas"]}
    old, new, starting = (replicas[f"iris-ep-{x}"] for x in ("r1-a", "r2-b", "r2-c"))
    assert (old["uptime_s"], old["requests"], old["requests_per_min"]) == (100.0, 30, 6.0)
    assert (old["avg_latency_ms"], old["cpus"], old["gpus"]) == (10.0, 1, 0)  # cpu-small
    assert (new["uptime_s"], new["requests"], new["avg_latency_ms"]) == (40.0, 20, 30.0)
    assert (new["cpus"], new["gpus"]) == (2, 0)  # cpu-medium: its revision's instance type
    assert (starting["uptime_s"], starting["requests"], starting["avg_latency_ms"]) == (
        None,
        0,
        None,
    )


def test_the_list_carries_the_figures_read_in_one_query(
    client: TestClient, db: Database, garden: None
) -> None:
    with counted_queries(db) as queries:
        r = client.get(EP)
    assert r.status_code == 200, r.text
    assert len([q for q in queries if "metric_points" in q]) == 1  # not one per endpoint
    # the replica rows too: one query per endpoint cost 200 ms with 200 endpoints
    assert len([q for q in queries if "FROM replicas" in q]) == 1
    items = by_name(r.json()["items"])
    check_iris(items["iris-ep"])
    rose = items["rose"]
    assert (rose["requests"], rose["requests_per_min"]) == (0, 0.0)
    assert (rose["avg_latency_ms"], rose["error_rate"], rose["uptime_s"]) == (None, None, None)


def test_the_detail_carries_the_same_figures(client: TestClient, garden: None) -> None:
    r = client.get(f"{EP}/iris-ep")
    assert r.status_code == 200, r.text
    check_iris(r.json())


def test_an_endpoint_whose_replicas_are_gone_has_no_uptime(
    client: TestClient, db: Database, garden: None
) -> None:
    with db.unit_of_work() as uow:
        for rid in ("iris-ep-r1-a", "iris-ep-r2-b"):
            uow.replicas.delete(rid)
    iris = client.get(f"{EP}/iris-ep").json()
    assert iris["uptime_s"] is None
    assert iris["requests"] == 1000  # what it served stays in the history


@pytest.mark.parametrize("interval", [5, 30])
def test_the_figures_are_read_at_the_sampled_interval(
    client: TestClient, ctx: ApiContext, db: Database, clock: FakeClock, interval: int
) -> None:
    """PODIUM_METRICS_INTERVAL_S other than 10: the sampler writes points at that
    resolution, and the list and detail read those (not empty 10 s figures)."""
    ctx.settings = dataclasses.replace(
        ctx.settings, observability=ObservabilitySettings(metrics_interval_s=interval)
    )
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post(EP, json=spec()).status_code == 201
    replica(db, clock, "iris-ep-r1-a", 1, ReplicaState.READY)
    end = int(now(clock)) // interval * interval - interval  # the newest closed slot
    per_slot = 12 * interval // 60  # 12 requests a minute, over the whole window
    insert(
        db,
        *[
            point("iris-ep", rid, ts, resolution=interval, requests=per_slot, latency_sum_ms=50.0)
            for ts in range(end - 300 + interval, end + 1, interval)
            for rid in ("", "iris-ep-r1-a")
        ],
        point("iris-ep", "", end, requests=999),  # a 10 s point: not what this sampler writes
    )
    for body in (client.get(EP).json()["items"][0], client.get(f"{EP}/iris-ep").json()):
        assert (body["requests"], body["requests_per_min"]) == (60, 12.0)
        assert body["avg_latency_ms"] == round(50.0 / per_slot, 3)
        (r1,) = body["replicas"]
        assert (r1["requests"], r1["requests_per_min"]) == (60, 12.0)
