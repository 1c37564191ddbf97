"""`GET /api/v1/endpoints/{name}/metrics` over a real API and a real SQLite store with
points written by the metric repository: aligned arrays with nulls where nothing was
stored, the derived series, the step (asked for or `auto`), one replica's view, the
scaling events of the range, problems naming the field, and the SDK over loopback HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.client import MetricHistory, PodiumClient
from podium.core.errors import NotFound
from podium.core.metric_schemas import SERIES
from podium.core.phases import EventKind, ReplicaState
from podium.core.service_counts import N_BUCKETS
from podium.store import Database
from podium.store.events import EventRepo
from podium.store.metrics import MetricPoint
from podium.store.records import ReplicaRecord
from tests.unit.api.conftest import push, spec

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
URL = "/api/v1/endpoints/iris-ep/metrics"


class At:
    """A clock standing at one wall time (the events' `at`)."""

    def __init__(self, ts: float) -> None:
        self.ts = ts

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ts, UTC)

    def monotonic(self) -> float:
        return self.ts


def point(ts: int, replica: str = "", resolution: int = 10, **values: Any) -> MetricPoint:
    p = MetricPoint("iris-ep", replica, resolution, ts)
    p.latency_buckets = [0] * N_BUCKETS
    for key, value in values.items():
        setattr(p, key, value)
    return p


@pytest.fixture
def endpoint(client: TestClient, db: Database) -> str:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201
    with db.unit_of_work() as uow:
        uow.metrics.upsert(
            [
                point(T0, requests=10, errors_5xx=2, latency_sum_ms=500.0, ready=1, desired=2),
                point(T0 + 10, requests=0, ready=2, desired=2, held=3.0, cpu_percent=12.5),
                point(T0 + 30, requests=4, latency_sum_ms=40.0, p95_ms=15.0, ready=2, desired=1),
                point(T0 + 30, "iris-ep-r1-abc", requests=4, in_flight=1.0, rss_bytes=2048),
                point(T0, resolution=60, requests=14, ready=2, desired=1),
            ]
        )
        for ts, kind, message in (
            (T0 + 5, EventKind.SCALED, "scaled 1 -> 2: 3 held"),
            (T0 + 6, EventKind.SPEC, "updated by admin"),  # not a scaling event
            (T0 + 31, EventKind.REPLICA_STOPPED, "iris-ep-r1-abc stopped"),
            (T0 + 400, EventKind.SCALED, "scaled 2 -> 1"),  # out of the range
        ):
            EventRepo(uow.session, At(ts)).add("iris-ep", kind, message)
    return "iris-ep"


def get(client: TestClient, **params: Any) -> Any:
    r = client.get(URL, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_aligned_series_with_nulls_where_nothing_was_stored(
    client: TestClient, endpoint: str
) -> None:
    body = get(client, **{"from": T0, "to": T0 + 40, "step": 10})
    assert (body["step"], body["from"], body["to"], body["replica"]) == (10, T0, T0 + 40, None)
    assert body["timestamps"] == [T0, T0 + 10, T0 + 20, T0 + 30]
    series = body["series"]
    assert series["requests"] == [10, 0, None, 4]
    assert series["rpm"] == [60.0, 0.0, None, 24.0]
    assert series["error_rate"] == [0.2, None, None, 0.0]  # 5xx per request; none: null
    assert series["latency_avg_ms"] == [50.0, None, None, 10.0]
    assert series["p95_ms"] == [None, None, None, 15.0]
    assert series["held"] == [0.0, 3.0, None, 0.0]
    assert series["ready"] == [1, 2, None, 2]
    assert series["scale"] == series["desired"] == [2, 2, None, 1]
    assert series["cpu_percent"] == [None, 12.5, None, None]
    assert set(series) == set(SERIES) - {"gpu_util_percent", "gpu_memory_bytes"}  # no GPU
    assert [(e["ts"], e["kind"]) for e in body["events"]] == [
        (T0 + 5, "scaled"),
        (T0 + 31, "replica_stopped"),
    ]


def test_chosen_series_iso_times_and_an_asked_gpu_series(client: TestClient, endpoint: str) -> None:
    body = get(
        client,
        series="p95_ms, requests,gpu_util_percent,requests",
        step=10,
        **{"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:20"},
    )
    assert list(body["series"]) == ["p95_ms", "requests", "gpu_util_percent"]
    assert body["timestamps"] == [T0, T0 + 10]
    assert body["series"]["gpu_util_percent"] == [None, None]  # asked for: present, empty


def test_the_step_asked_for_or_picked(client: TestClient, endpoint: str) -> None:
    minute = get(client, step="60", **{"from": T0, "to": T0 + 120})
    assert (minute["step"], minute["series"]["requests"]) == (60, [14, None])
    # `auto`: the finest resolution giving at most ~1000 steps that still holds the range.
    now = time.time()
    assert get(client, **{"from": now - 7200, "to": now})["step"] == 10  # 720 steps
    assert get(client, **{"from": now - 3 * 3600, "to": now})["step"] == 60  # 1080 at 10 s
    assert get(client, step="auto", **{"from": now - 86400, "to": now})["step"] == 3600
    old = now - 3 * 86400  # older than the 10 s points are kept (a day): minutes
    assert get(client, **{"from": old, "to": old + 600})["step"] == 60
    older = now - 30 * 86400  # older than the minute points (a week): hours
    assert get(client, **{"from": older, "to": older + 600})["step"] == 3600
    recent = get(client)  # the last hour
    assert recent["step"] == 10 and len(recent["timestamps"]) in (360, 361)


def test_one_replica(client: TestClient, endpoint: str, db: Database) -> None:
    body = get(client, replica="iris-ep-r1-abc", step=10, **{"from": T0 + 20, "to": T0 + 40})
    assert body["replica"] == "iris-ep-r1-abc"
    assert body["series"]["requests"] == [None, 4]
    assert body["series"]["rss_bytes"] == [None, 2048]
    assert body["series"]["ready"] == body["series"]["held"] == [None, None]  # endpoint only
    # A running replica with no point yet is known; one never seen is a 404.
    with db.unit_of_work() as uow:
        uow.replicas.upsert(
            ReplicaRecord(
                "iris-ep-r2-new",
                "iris-ep",
                1,
                ReplicaState.READY,
                "127.0.0.1",
                1,
                None,
                datetime.now(UTC),
            )
        )
    assert get(client, replica="iris-ep-r2-new")["series"]["requests"][0] is None
    r = client.get(URL, params={"replica": "iris-ep-r9-zzz"})
    assert (r.status_code, r.json()["field"]) == (404, "replica")


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"series": "requests,p42_ms"}, "series", "p42_ms"),
        ({"series": " , "}, "series", "known: requests"),
        ({"from": T0 + 100, "to": T0}, "from", "after"),
        ({"from": "yesterday"}, "from", "ISO 8601"),
        ({"to": "nan"}, "to", "out of range"),
        ({"step": "30"}, "step", "one of 10, 60, 3600"),
        ({"step": "10", "from": T0, "to": T0 + 30 * 86400}, "step", "at most"),
        ({"from": 0, "to": T0}, "from", "longer than"),
        ({"series": "x" * 1001}, "series", ""),
    ],
)
def test_problems_name_the_field(
    client: TestClient, endpoint: str, params: dict[str, Any], field: str, says: str
) -> None:
    r = client.get(URL, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert field in (problem.get("field"), *[e.get("field") for e in problem.get("errors", [])])
    assert says in r.text


def test_an_unknown_endpoint_is_a_404(client: TestClient) -> None:
    r = client.get("/api/v1/endpoints/nope/metrics")
    assert (r.status_code, r.json()["field"]) == (404, "name")


def test_the_sdk_reads_the_history_over_http(
    server_url: str, admin_token: str, endpoint: str
) -> None:
    with PodiumClient(server_url, token=admin_token) as sdk:
        got = sdk.metrics_history(
            "iris-ep", series=["requests", "scale"], since=T0, until=T0 + 40, step=10
        )
        assert isinstance(got, MetricHistory)
        assert (got.from_, got.to, got.step) == (T0, T0 + 40, 10)
        assert got.series == {"requests": [10, 0, None, 4], "scale": [2, 2, None, 1]}
        assert [e.kind for e in got.events] == [EventKind.SCALED, EventKind.REPLICA_STOPPED]
        one = sdk.metrics_history(
            "iris-ep",
            since=datetime.fromtimestamp(T0 + 30, UTC),
            until=T0 + 40,
            step="10",
            replica="iris-ep-r1-abc",
        )
        assert one.series["requests"] == [4]
        with pytest.raises(NotFound):
            sdk.metrics_history("nope")
