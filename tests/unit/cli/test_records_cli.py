"""`podium requests NAME`: the table, the filters, CSV and --follow, against the real API."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from podium.cli import records as records_cli
from podium.client import PodiumClient
from podium.core.request_record import ErrorClass, RequestRecord
from tests.support.inproc import InProcessPodium
from tests.support.request_records import record
from tests.unit.cli.conftest import Cli


def add(api: InProcessPodium, records: list[RequestRecord]) -> None:
    with api.podium.db.unit_of_work() as uow:
        uow.requests.insert_many(records)


@pytest.fixture
def born(api: InProcessPodium, pushed: str) -> float:
    """Endpoint iris with 6 records: #3 a 503 held 40 ms, #4 a stream the client left,
    #5 slow (900 ms) from replica r2."""
    with PodiumClient(api.url) as client:
        client.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
    with api.podium.db.unit_of_work(read_only=True) as uow:
        created = uow.endpoints.get("iris").created_at.timestamp()
    changes: dict[int, dict[str, Any]] = {
        3: {"status": 503, "error": ErrorClass.QUEUE_FULL, "queue_ms": 40.0, "replica_id": None,
            "upstream_ms": None},
        4: {"status": 0, "error": ErrorClass.CLIENT_GONE, "streamed": True, "tokens_in": 7,
            "tokens_out": 12},
        5: {"latency_ms": 900.0, "replica_id": "iris-r2-000001", "revision": 2},
    }  # fmt: skip
    add(api, [record(i, received_at=created + 1 + i, **changes.get(i, {})) for i in range(6)])
    return created


def ids_in(output: str) -> list[str]:
    return [
        word for line in output.splitlines() for word in line.split() if word.startswith("req-")
    ]


def test_the_table_newest_first(cli: Cli, born: float) -> None:
    result = cli("requests", "iris")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == " ".join(records_cli.COLUMNS).split()
    assert ids_in(result.stdout) == [f"req-{i:06d}" for i in range(5, -1, -1)]
    cells = {row.split()[2]: row for row in rows}  # by request id
    assert "900 ms" in cells["req-000005"] and "iris-r2-000001" in cells["req-000005"]
    assert "queue_full" in cells["req-000003"] and "40.0 ms" in cells["req-000003"]
    assert " 0 " in cells["req-000004"] and "7/12" in cells["req-000004"]
    assert "POST /predict" in cells["req-000000"] and "100/200" in cells["req-000000"]
    assert "127.0.0.1" in cells["req-000000"]
    assert cli.api.requests[-1].startswith("GET /api/v1/endpoints/iris/requests?limit=50")


def test_filters_and_limit(cli: Cli, born: float) -> None:
    assert ids_in(cli("requests", "iris", "--errors").stdout) == ["req-000004", "req-000003"]
    assert ids_in(cli("requests", "iris", "--slow", "14").stdout) == ["req-000005", "req-000004"]
    assert ids_in(cli("requests", "iris", "--replica", "iris-r2-000001").stdout) == ["req-000005"]
    assert ids_in(cli("requests", "iris", "-n", "2").stdout) == ["req-000005", "req-000004"]
    assert cli("requests", "iris", "--slow", "5000").stdout == "no requests\n"


def test_csv(cli: Cli, born: float) -> None:
    result = cli("requests", "iris", "--csv", "--errors")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["request_id"], r["status"], r["error"]) for r in rows] == [
        ("req-000004", "0", "client_gone"),
        ("req-000003", "503", "queue_full"),
    ]
    assert rows[0]["streamed"] == "true" and rows[1]["replica_id"] == ""


def test_follow_prints_new_records_until_ctrl_c(
    cli: Cli, born: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls: list[int] = []

    def sleep(_seconds: float) -> None:
        polls.append(1)
        if len(polls) == 1:  # records written while the command waits
            add(cli.api, [record(i, received_at=born + 10 + i) for i in (6, 7)])
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(records_cli, "_sleep", sleep)
    result = cli("requests", "iris", "--follow", "-n", "3")
    assert result.exit_code == 0, result.output
    # The newest three oldest first, then the new ones as they come.
    assert ids_in(result.stdout) == [f"req-{i:06d}" for i in (3, 4, 5, 6, 7)]
    assert result.stdout.splitlines()[0].split()[:3] == ["time", "request", "id"]
    # The first poll (above the newest id shown, 6) found nothing; the second the two new.
    follows = [r.split("?")[1] for r in cli.api.requests if "after=" in r]
    assert follows == ["limit=1000&after=6"] * 2


def test_errors(cli: Cli, born: float) -> None:
    result = cli("requests", "ghost")
    assert (result.exit_code, result.stderr) == (1, "error: name: endpoint 'ghost' not found\n")
    result = cli("requests", "iris", "--csv", "--follow")
    assert result.exit_code == 2
    assert "--csv cannot follow" in result.stderr
