"""`GET /api/v1/endpoints/{name}/requests`: JSON pages, filters, cursors, CSV, errors."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api.deps import ApiContext
from podium.core.access import Scope
from podium.core.record_schemas import COLUMNS, csv_columns
from podium.core.request_record import ErrorClass, RequestRecord
from podium.store import Database
from tests.support.request_records import record
from tests.unit.api.conftest import make_token, push, spec

URL = "/api/v1/endpoints/iris-ep/requests"


@pytest.fixture
def born(client: TestClient, db: Database) -> float:
    """The endpoint `iris-ep`; returns when it was created (unix seconds)."""
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201
    with db.unit_of_work(read_only=True) as uow:
        return uow.endpoints.get("iris-ep").created_at.timestamp()


def write(db: Database, records: list[RequestRecord]) -> None:
    with db.unit_of_work() as uow:
        uow.requests.insert_many(records)


def mixed(born: float, n: int = 40) -> list[RequestRecord]:
    """`n` records of iris-ep received after it was created: every fourth a failure of a
    kind, every fifth from replica r2 of revision 2."""
    out = []
    for i in range(n):
        changes: dict[str, Any] = {"received_at": born + 1 + i}
        if i % 4 == 1:
            changes.update(status=404, error=ErrorClass.REPLICA_4XX)
        elif i % 4 == 2:
            changes.update(status=503, error=ErrorClass.QUEUE_FULL, replica_id=None)
        elif i % 4 == 3 and i % 8 == 7:
            changes.update(status=0, error=ErrorClass.CLIENT_GONE, streamed=True, tokens_out=3)
        if i % 5 == 0:
            changes.update(revision=2, replica_id="iris-ep-r2-000001")
        out.append(record(i, endpoint="iris-ep", **changes))
    return out


def rids(answer: Any) -> list[int]:
    return [int(item["request_id"][-6:]) for item in answer.json()["items"]]


def test_pages_newest_first_with_a_cursor(client: TestClient, db: Database, born: float) -> None:
    write(db, mixed(born, 25))
    first = client.get(URL, params={"limit": 10})
    assert first.status_code == 200, first.text
    body = first.json()
    assert rids(first) == list(range(24, 14, -1))
    item = body["items"][0]
    assert item["endpoint"] == "iris-ep" and item["project"] == "default"
    assert item["protocol"] == "hf" and item["latency_ms"] == 34.0
    assert "request_body" not in item  # payloads only when asked
    seen = rids(first)
    cursor = body["next_cursor"]
    while cursor is not None:
        page = client.get(URL, params={"limit": 10, "cursor": cursor})
        seen += rids(page)
        cursor = page.json()["next_cursor"]
    assert seen == list(range(24, -1, -1))
    # A follower: the ones above an id, oldest first.
    newest = body["items"][0]["id"]
    write(db, [record(100, endpoint="iris-ep", received_at=born + 200)])
    assert rids(client.get(URL, params={"after": newest})) == [100]
    assert client.get(URL, params={"after": newest + 1}).json()["items"] == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "2xx"}, [i for i in range(40) if i % 4 in (0, 3) and i % 8 != 7]),
        ({"status": "4xx"}, [i for i in range(40) if i % 4 == 1]),
        ({"status": "5xx"}, [i for i in range(40) if i % 4 == 2]),
        ({"status": "3xx"}, []),
        ({"status": "error"}, [i for i in range(40) if i % 4 in (1, 2) or i % 8 == 7]),
        ({"min_latency_ms": 45}, list(range(35, 40))),
        ({"revision": 2}, list(range(0, 40, 5))),
        ({"replica": "iris-ep-r2-000001"}, list(range(0, 40, 5))),
        ({"request_id": "req-000017"}, [17]),
        ({"status": "error", "revision": 2}, [5, 10, 15, 25, 30]),
    ],
)
def test_filters(
    client: TestClient, db: Database, born: float, params: dict[str, Any], expected: list[int]
) -> None:
    write(db, mixed(born))
    answer = client.get(URL, params={**params, "limit": 1000})
    assert answer.status_code == 200, answer.text
    assert sorted(rids(answer)) == expected


def test_since_and_until_take_unix_seconds_or_iso_8601(
    client: TestClient, db: Database, born: float
) -> None:
    write(db, mixed(born, 10))
    from datetime import UTC, datetime

    since = datetime.fromtimestamp(born + 3, UTC)
    until = born + 6  # exclusive
    for given in (since.isoformat(), since.isoformat().replace("+00:00", "Z"), str(born + 3)):
        answer = client.get(URL, params={"since": given, "until": str(until)})
        assert sorted(rids(answer)) == [2, 3, 4], given
    naive = since.replace(tzinfo=None).isoformat()  # no offset: UTC
    assert sorted(rids(client.get(URL, params={"since": naive, "until": until}))) == [2, 3, 4]


def test_records_before_the_endpoint_was_created_are_not_shown(
    client: TestClient, db: Database, born: float
) -> None:
    """Those of an earlier endpoint of the same name, kept until pruned."""
    write(db, [record(1, endpoint="iris-ep", received_at=born - 5)])
    write(db, [record(2, endpoint="iris-ep", received_at=born + 5)])
    assert rids(client.get(URL)) == [2]


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _as_cells(item: dict[str, Any], columns: tuple[str, ...]) -> list[str]:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return [cell(item[c]) for c in columns]


@pytest.mark.parametrize("how", ["format", "accept"])
def test_csv_is_the_json_rows(client: TestClient, db: Database, born: float, how: str) -> None:
    write(db, mixed(born, 40))
    params: dict[str, Any] = {"status": "error", "min_latency_ms": 12, "limit": 1000}
    page = client.get(URL, params=params).json()["items"]
    assert len(page) > 5
    if how == "format":
        answer = client.get(URL, params={**params, "format": "csv"})
    else:
        answer = client.get(URL, params=params, headers={"accept": "text/csv, */*;q=0.5"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="iris-ep-requests.csv"'
    rows = _csv_rows(answer.text)
    assert tuple(rows[0]) == COLUMNS
    assert rows[1:] == [_as_cells(item, COLUMNS) for item in page]


def test_csv_streams_past_a_page_and_stops_at_the_limit(
    client: TestClient, db: Database, born: float
) -> None:
    write(db, [record(i, endpoint="iris-ep", received_at=born + 1 + i) for i in range(2500)])
    rows = _csv_rows(client.get(URL, params={"format": "csv", "limit": 2300}).text)
    assert len(rows) == 1 + 2300
    assert [r[1] for r in rows[1:3]] == ["req-002499", "req-002498"]
    assert rows[-1][1] == "req-000200"
    everything = _csv_rows(client.get(URL, params={"format": "csv"}).text)  # default 10000
    assert len(everything) == 1 + 2500


def test_payloads_only_when_asked(client: TestClient, db: Database, born: float) -> None:
    bodies = {"request_body": '{"inputs": [1, 2]}', "response_body": '{"outputs": 3}'}
    write(db, [record(1, endpoint="iris-ep", received_at=born + 1, **bodies)])
    item = client.get(URL, params={"include_payloads": "true"}).json()["items"][0]
    assert (item["request_body"], item["response_body"]) == ('{"inputs": [1, 2]}', '{"outputs": 3}')
    rows = _csv_rows(client.get(URL, params={"format": "csv", "include_payloads": "true"}).text)
    assert tuple(rows[0]) == csv_columns(True)
    assert rows[1][-2:] == ['{"inputs": [1, 2]}', '{"outputs": 3}']
    assert len(_csv_rows(client.get(URL, params={"format": "csv"}).text)[1]) == len(COLUMNS)


def test_csv_cells_a_spreadsheet_would_run_are_quoted(
    client: TestClient, db: Database, born: float
) -> None:
    evil = record(1, endpoint="iris-ep", received_at=born + 1, user_agent="=HYPERLINK(1)")
    write(db, [evil])
    rows = _csv_rows(client.get(URL, params={"format": "csv"}).text)
    assert rows[1][COLUMNS.index("user_agent")] == "'=HYPERLINK(1)"
    assert client.get(URL).json()["items"][0]["user_agent"] == "=HYPERLINK(1)"  # JSON: as is


def test_unknown_endpoint_is_404(client: TestClient, born: float) -> None:
    answer = client.get("/api/v1/endpoints/ghost/requests")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "name"
    assert (
        client.get("/api/v1/endpoints/ghost/requests", params={"format": "csv"}).status_code == 404
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "2xxx"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"until": "nan"}, "until"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "5", "after": "3"}, "cursor"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "100001", "format": "csv"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"min_latency_ms": "-1"}, "min_latency_ms"),
        ({"replica": "r" * 129}, "replica"),
        ({"format": "xml"}, "format"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(
    client: TestClient, born: float, params: dict[str, str], field: str
) -> None:
    answer = client.get(URL, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == field


def test_payloads_need_deploy_not_only_read(
    client: TestClient, db: Database, born: float, ctx: ApiContext
) -> None:
    """Captured bodies (prompts, answers) are shown to deployers, never to mere readers."""
    write(db, [record(1, endpoint="iris-ep", received_at=born + 1, request_body='{"a": 1}')])
    reader = make_token(db, "reader", (Scope.READ,), tokens=ctx.tokens)
    deployer = make_token(db, "deployer", (Scope.DEPLOY,), tokens=ctx.tokens)
    as_reader = {"authorization": f"Bearer {reader}"}
    assert client.get(URL, headers=as_reader).status_code == 200
    refused = client.get(URL, params={"include_payloads": "true"}, headers=as_reader)
    assert refused.status_code == 403
    assert refused.json()["field"] == "include_payloads"
    csv_refused = client.get(
        URL, params={"include_payloads": "true", "format": "csv"}, headers=as_reader
    )
    assert csv_refused.status_code == 403
    shown = client.get(
        URL, params={"include_payloads": "true"}, headers={"authorization": f"Bearer {deployer}"}
    )
    assert shown.status_code == 200 and shown.json()["items"][0]["request_body"] == '{"a": 1}'
