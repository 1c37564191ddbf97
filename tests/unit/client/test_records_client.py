"""The SDK's request records methods against the real server app over loopback HTTP."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from podium.client import Invalid, NotFound, PodiumClient, RequestRecordPage, StatusClass
from podium.core.request_record import ErrorClass
from tests.support.inproc import InProcessPodium
from tests.support.request_records import record
from tests.unit.client.test_packing import make_model


@pytest.fixture
def born(podium: InProcessPodium, client: PodiumClient, tmp_path: Path) -> float:
    """Endpoint `iris` in project default with 30 records (every third a 500 from r2),
    and `iris` in project team with one; returns when default's was created."""
    client.push_model(make_model(tmp_path), "iris", framework="sklearn")
    client.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
    client.create_project("team")
    client.push_model(make_model(tmp_path / "t"), "iris", framework="sklearn", project="team")
    client.deploy({"name": "iris", "model": "iris", "framework": "sklearn", "project": "team"})
    with podium.podium.db.unit_of_work() as uow:
        created = uow.endpoints.get("iris").created_at.timestamp()
        other = uow.endpoints.get("team.iris").created_at.timestamp()
        failure = {"status": 500, "error": ErrorClass.REPLICA_5XX, "replica_id": "iris-r2-000001"}
        uow.requests.insert_many(
            [record(i, received_at=created + 1 + i, **(failure if i % 3 == 0 else {}))
             for i in range(30)]
            + [record(99, endpoint="team.iris", received_at=other + 1)]
        )  # fmt: skip
    return created


def test_a_page_and_its_cursor(client: PodiumClient, born: float) -> None:
    page = client.requests("iris", limit=7)
    assert isinstance(page, RequestRecordPage)
    assert [r.request_id for r in page.items] == [f"req-{i:06d}" for i in range(29, 22, -1)]
    assert page.items[0].endpoint == "iris" and page.items[0].latency_ms == 39.0
    older = client.requests("iris", limit=7, cursor=page.next_cursor)
    assert older.items[0].request_id == "req-000022"
    newer = client.requests("iris", after=older.items[0].id)
    assert [r.request_id for r in newer.items] == [f"req-{i:06d}" for i in range(23, 30)]
    team = client.requests("iris", project="team")
    assert [(r.request_id, r.project) for r in team.items] == [("req-000099", "team")]


def test_iter_requests_follows_the_cursors(client: PodiumClient, born: float) -> None:
    every = list(client.iter_requests("iris", page_size=4))
    assert [r.request_id for r in every] == [f"req-{i:06d}" for i in range(29, -1, -1)]
    failed = list(client.iter_requests("iris", status=StatusClass.ERROR, page_size=3))
    assert [r.status for r in failed] == [500] * 10
    since = datetime.fromtimestamp(born + 11, UTC)  # a datetime, or unix seconds
    window = client.iter_requests("iris", since=since, until=born + 14, replica="iris-r1-000001")
    assert [r.request_id for r in window] == ["req-000011", "req-000010"]
    slow = client.iter_requests("iris", min_latency_ms=37, status="5xx")
    assert [r.request_id for r in slow] == ["req-000027"]


def test_requests_csv(client: PodiumClient, born: float) -> None:
    text = client.requests_csv("iris", status="error", limit=4)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["request_id"] for r in rows] == [
        "req-000027",
        "req-000024",
        "req-000021",
        "req-000018",
    ]
    json_rows = client.requests("iris", status="error", limit=4).items
    assert [float(r["latency_ms"]) for r in rows] == [r.latency_ms for r in json_rows]
    assert {r["error"] for r in rows} == {"replica_5xx"}


def test_errors(client: PodiumClient, born: float) -> None:
    with pytest.raises(NotFound):
        client.requests("ghost")
    with pytest.raises(Invalid) as caught:
        client.requests("iris", status="6xx")
    assert caught.value.field == "status"
    with pytest.raises(Invalid) as caught:
        client.requests("iris", since="last tuesday")
    assert caught.value.field == "since"
