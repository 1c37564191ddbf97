"""The usage route: replica seconds and cost per endpoint or UTC day, clipped to the period,
as JSON or CSV, per the caller's projects."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.artifacts.store import ArtifactStore
from podium.backends.local_logs import LocalLogs
from podium.core.settings import Settings, SizePrices
from podium.store import Database
from podium.store.usage import RowSize
from tests.unit.api.conftest import WakeRecorder
from tests.unit.api.test_secrets_api import Tokens

T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # an hour before midnight
FROM, TO = "2026-03-01T22:00:00Z", "2026-03-02T02:00:00Z"
# What a replica sized by `resources` costs per hour and unit (PODIUM_PRICE_PER_*_HOUR).
PRICES = SizePrices(per_cpu_hour=0.04, per_gib_hour=0.005, per_gpu_hour=0.5)


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def tokens() -> Tokens:
    return Tokens()


@pytest.fixture
def client(tmp_path: Path, db: Database, tokens: Tokens) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "home", port=8123, prices=PRICES)
    ctx = ApiContext(
        settings=settings,
        db=db,
        artifacts=ArtifactStore(settings.artifacts_dir),
        logs=LocalLogs(settings.logs_dir, settings.log_retention),
        wake=WakeRecorder(),
        tokens=tokens.directory,
    )
    with TestClient(create_api(ctx)) as c:
        yield c


def _ran(
    db: Database, rid: str, key: str, project: str, itype: str, start: float, end: float
) -> None:
    with db.unit_of_work() as uow:
        uow.usage.open(
            rid, endpoint=key, project=project, instance_type=itype, started_at=_h(start)
        )
        uow.usage.close(rid, _h(end))


@pytest.fixture
def ran(db: Database) -> None:
    # spin (default, cpu-small at $0.05/h): two replicas, 1 h each, one across midnight.
    _ran(db, "spin-1", "spin", "default", "cpu-small", 0, 1)  # 23:00-00:00
    _ran(db, "spin-2", "spin", "default", "cpu-small", 0.5, 1.5)  # 23:30-00:30
    # Scaled to zero from 00:30 to 01:30: no replica, no row, no cost; then 30 min more.
    _ran(db, "spin-3", "spin", "default", "cpu-small", 2.5, 5)  # 01:30-04:00, clipped at 02:00
    # team.chat (gpu-small at $0.60/h): 2 h, started before the period (clipped at 22:00).
    _ran(db, "chat-1", "team.chat", "team", "gpu-small", -3, 0)  # 20:00-23:00
    # A type the catalog does not know (removed since): costs 0, and a note says so.
    _ran(db, "old-1", "team.old", "team", "tpu-huge", 0, 1)


def test_usage_per_endpoint_clips_and_prices(client: TestClient, tokens: Tokens, ran: None) -> None:
    got = client.get(f"/api/v1/usage?from={FROM}&to={TO}", headers=tokens.admin)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["group_by"] == "endpoint" and body["currency"] == "USD"
    rows = {(r["project"], r["endpoint"]): r for r in body["rows"]}
    assert rows[("default", "spin")]["replica_seconds"] == 3600 * 2.5
    assert rows[("default", "spin")]["cost"] == pytest.approx(2.5 * 0.05)
    assert rows[("team", "chat")]["replica_seconds"] == 3600
    assert rows[("team", "chat")]["cost"] == pytest.approx(0.60)
    assert rows[("team", "old")]["cost"] == 0
    assert body["total_replica_seconds"] == 3600 * 4.5
    assert body["total_cost"] == pytest.approx(0.125 + 0.60)
    assert body["notes"] == [
        "instance type 'tpu-huge' is not in this server's catalog: its time costs 0"
    ]
    one = client.get(
        f"/api/v1/usage?project=team&endpoint=chat&from={FROM}&to={TO}", headers=tokens.admin
    ).json()
    assert [(r["endpoint"], r["replica_seconds"]) for r in one["rows"]] == [("chat", 3600.0)]


def test_a_custom_size_is_priced_by_the_size_its_rows_record(
    client: TestClient, tokens: Tokens, db: Database
) -> None:
    """`resources` replicas are the type `custom`; each row records its size, so the
    report prices it per unit, and two sizes of one endpoint (a resize) stay apart."""
    with db.unit_of_work() as uow:
        for rid, size, start in (
            ("big-1", RowSize(cpus=2, memory_mb=4096, gpus=1), 0.0),  # 0.08 + 0.02 + 0.5 / h
            ("big-2", RowSize(cpus=0.5, memory_mb=1024, gpus=0), 1.0),  # 0.02 + 0.005 / h
        ):
            uow.usage.open(
                rid,
                endpoint="big",
                project="default",
                instance_type="custom",
                size=size,
                started_at=_h(start),
            )
            uow.usage.close(rid, _h(start + 1))
    body = client.get(f"/api/v1/usage?from={FROM}&to={TO}", headers=tokens.admin).json()
    rows = [(r["cpus"], r["memory_mb"], r["gpus"], r["cost"]) for r in body["rows"]]
    assert rows == [(0.5, 1024, 0, pytest.approx(0.025)), (2, 4096, 1, pytest.approx(0.6))]
    assert {r["instance_type"] for r in body["rows"]} == {"custom"}
    assert body["total_cost"] == pytest.approx(0.625) and body["notes"] == []


def test_usage_per_day_splits_at_utc_midnight(
    client: TestClient, tokens: Tokens, ran: None
) -> None:
    body = client.get(
        f"/api/v1/usage?project=default&group_by=day&from={FROM}&to={TO}", headers=tokens.admin
    ).json()
    days = [(r["day"], r["replica_seconds"]) for r in body["rows"]]
    # 23:00-00:00 and 23:30-00:00 on the 1st; 00:00-00:30 and 01:30-02:00 on the 2nd.
    assert days == [("2026-03-01", 3600 * 1.5), ("2026-03-02", 3600.0)]
    assert all("endpoint" not in r for r in body["rows"])


def test_usage_as_csv(client: TestClient, tokens: Tokens, ran: None) -> None:
    got = client.get(
        f"/api/v1/usage?project=default&from={FROM}&to={TO}&format=csv", headers=tokens.admin
    )
    assert got.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(got.text)))
    assert table == [
        ["project", "endpoint", "instance_type", "replica_seconds", "cost"],
        ["default", "spin", "cpu-small", "9000.000", "0.125000"],
    ]
    by_accept = client.get(
        f"/api/v1/usage?project=default&from={FROM}&to={TO}",
        headers={**tokens.admin, "Accept": "text/csv"},
    )
    assert by_accept.text == got.text


def test_usage_is_scoped_to_the_callers_projects(
    client: TestClient, tokens: Tokens, ran: None
) -> None:
    mine = client.get(f"/api/v1/usage?from={FROM}&to={TO}", headers=tokens.reader).json()
    assert {r["project"] for r in mine["rows"]} == {"team"}
    refused = client.get(
        f"/api/v1/usage?project=default&from={FROM}&to={TO}", headers=tokens.reader
    )
    assert refused.status_code == 403
    assert client.get("/api/v1/usage").status_code == 401
    backwards = client.get(f"/api/v1/usage?from={TO}&to={FROM}", headers=tokens.admin)
    assert backwards.status_code == 422 and backwards.json()["field"] == "from"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=0001-01-02T00:00:00", "to"),  # the default `from` (to - 30 days) is before year 1
        ("to=9999-12-31T23:00:00-05:00", "to"),  # past year 9999 in UTC
        ("from=0001-01-01T00:00:00%2B01:00&to=2026-01-01T00:00:00", "from"),  # before year 1
    ],
)
def test_usage_dates_out_of_range_are_a_422_naming_the_field(
    client: TestClient, tokens: Tokens, query: str, field: str
) -> None:
    r = client.get(f"/api/v1/usage?{query}", headers=tokens.admin)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_usage_over_the_widest_range_answers(client: TestClient, tokens: Tokens, ran: None) -> None:
    r = client.get(
        "/api/v1/usage?from=0001-01-01T00:00:00&to=9999-12-31T23:59:59", headers=tokens.admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["total_replica_seconds"] > 0
