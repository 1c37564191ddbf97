"""Request records in the store (SQLite and PostgreSQL): insert, pages, filters, pruning."""

from __future__ import annotations

from dataclasses import replace

import pytest

from podium.core.errors import Invalid
from podium.core.record_schemas import StatusClass
from podium.core.request_record import ErrorClass, Protocol
from podium.store import Database
from podium.store.requests import (
    INSERT_COLUMNS,
    ROWS_PER_STATEMENT,
    RecordFilter,
    StoredRecord,
)
from podium.store.tables import RequestRecordRow
from tests.support.request_records import T0, failed, record


def _ids(stored: list[StoredRecord]) -> list[str]:
    return [s.record.request_id for s in stored]


def test_insert_columns_are_every_column_but_the_id_in_the_tables_order() -> None:
    columns = [c.name for c in RequestRecordRow.__table__.c if c.name != "id"]
    assert list(INSERT_COLUMNS) == columns


def test_rows_go_in_multi_row_statements_whole_and_partial(database: Database) -> None:
    """More rows than one statement holds, and a last statement of fewer: every row is
    stored once, in order, as the typed record it came from."""
    n = 2 * ROWS_PER_STATEMENT + 7
    made = [record(i, error=ErrorClass.REPLICA_5XX if i % 3 else None) for i in range(n)]
    with database.unit_of_work() as uow:
        assert uow.requests.insert_rows([r.row() for r in made]) == n
        assert uow.requests.insert_rows([]) == 0
    with database.unit_of_work(read_only=True) as uow:
        got = uow.requests.page("iris", limit=n, after=0, payloads=True)
    assert [s.record for s in got] == made


def test_records_read_back_as_written(database: Database) -> None:
    full = record(
        1,
        protocol=Protocol.OPENAI,
        status=0,
        error=ErrorClass.CLIENT_GONE,
        ttft_ms=3.5,
        tokens_in=12,
        tokens_out=40,
        streamed=True,
        request_body='{"inputs": 1}',
        response_body="data: x",
    )
    bare = record(2, revision=None, replica_id=None, upstream_ms=None, ttfb_ms=None,
                  client=None, user_agent=None, token_id=None)  # fmt: skip
    with database.unit_of_work() as uow:
        assert uow.requests.insert_many([full, bare]) == 2
        assert uow.requests.insert_many([]) == 0
    with database.unit_of_work(read_only=True) as uow:
        page = uow.requests.page("iris", payloads=True)
        assert [s.record for s in page] == [bare, full]  # newest first
        assert page[0].id > page[1].id
        # Without payloads the (possibly large) bodies are not read.
        light = uow.requests.page("iris")
        assert light[1].record == replace(full, request_body=None, response_body=None)
        assert uow.requests.count("iris") == 2
        assert uow.requests.newest_id() == page[0].id


def test_texts_are_clamped_to_their_columns(database: Database) -> None:
    long = record(0, route="/" + "r" * 999, user_agent="u" * 999, client="c" * 99,
                  request_id="q" * 300, token_id="t" * 40, replica_id="x" * 300)  # fmt: skip
    with database.unit_of_work() as uow:
        uow.requests.insert_many([long])
    with database.unit_of_work(read_only=True) as uow:
        (got,) = uow.requests.page("iris")
    assert got.record.route == long.route[:256]
    assert got.record.user_agent == "u" * 256
    assert (len(got.record.request_id), len(got.record.client or "")) == (128, 64)
    assert (len(got.record.token_id or ""), len(got.record.replica_id or "")) == (16, 128)


def test_cursor_pages_cover_every_record_once(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.requests.insert_many([record(i) for i in range(23)])
        uow.requests.insert_many([record(i, endpoint="wine") for i in range(5)])
    seen: list[str] = []
    before = None
    with database.unit_of_work(read_only=True) as uow:
        while page := uow.requests.page("iris", before=before, limit=10):
            seen += _ids(page)
            before = page[-1].id
        assert seen == [f"req-{i:06d}" for i in reversed(range(23))]
        # A follower: oldest first above the newest id it has seen.
        newest = uow.requests.page("iris", limit=3)
    with database.unit_of_work() as uow:
        uow.requests.insert_many([record(i) for i in (100, 101)])
    with database.unit_of_work(read_only=True) as uow:
        assert _ids(uow.requests.page("iris", after=newest[0].id)) == ["req-000100", "req-000101"]
        with pytest.raises(Invalid) as caught:
            uow.requests.page("iris", before=5, after=1)
        assert caught.value.field == "cursor"
        for bad in (0, 5001):
            with pytest.raises(Invalid) as caught:
                uow.requests.page("iris", limit=bad)
            assert caught.value.field == "limit"


def test_filters(database: Database) -> None:
    rows = [
        record(0),
        record(1, status=302),
        failed(2, 404, ErrorClass.REPLICA_4XX),
        failed(3, 429, ErrorClass.RATE_LIMITED, replica_id=None, revision=None),
        failed(4, 503, ErrorClass.QUEUE_FULL, replica_id=None),
        failed(5, 0, ErrorClass.CLIENT_GONE),
        failed(6, 200, ErrorClass.UPSTREAM_CUT),  # the head was sent, the body was cut
        record(7, revision=2, replica_id="iris-r2-000001", latency_ms=900.0),
    ]
    with database.unit_of_work() as uow:
        uow.requests.insert_many(rows)

    def ids(**given: object) -> list[int]:
        with database.unit_of_work(read_only=True) as uow:
            page = uow.requests.page("iris", RecordFilter(**given))  # type: ignore[arg-type]
            assert uow.requests.count("iris", RecordFilter(**given)) == len(page)  # type: ignore[arg-type]
        return sorted(int(s.record.request_id[-2:]) for s in page)

    assert ids(status=StatusClass.S2XX) == [0, 7]  # a 200 whose body was cut is an error
    assert ids(status=StatusClass.S3XX) == [1]
    assert ids(status=StatusClass.S4XX) == [2, 3]
    assert ids(status=StatusClass.S5XX) == [4]
    assert ids(status=StatusClass.ERROR) == [2, 3, 4, 5, 6]
    assert ids(min_latency_ms=15.0) == [5, 6, 7]
    assert ids(since=T0 + 2, until=T0 + 5) == [2, 3, 4]
    assert ids(replica="iris-r2-000001") == [7]
    assert ids(revision=1) == [0, 1, 2, 4, 5, 6]
    assert ids(request_id="req-000003") == [3]
    assert ids(status=StatusClass.ERROR, min_latency_ms=14.0, revision=1) == [4, 5, 6]


def test_a_recreated_endpoint_shows_none_of_the_old_ones(database: Database) -> None:
    """Records outlive their endpoint (until pruned); the API passes the endpoint's
    `created_at` as `born_at`, so a new endpoint of the same name starts empty."""
    with database.unit_of_work() as uow:
        uow.requests.insert_many([record(i) for i in range(5)])
    with database.unit_of_work(read_only=True) as uow:
        assert _ids(uow.requests.page("iris", born_at=T0 + 3)) == ["req-000004", "req-000003"]
        assert uow.requests.count("iris", born_at=T0 + 3) == 2
        assert uow.requests.count("iris", born_at=T0 + 10) == 0


def test_prune_by_age_then_by_rows_in_bounded_batches(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.requests.insert_many([record(i) for i in range(30)])
    now = T0 + 100
    with database.unit_of_work() as uow:
        # Older than 90 s: records 0-9; batches of 4 leave some for the next call.
        assert uow.requests.prune(now, max_age_s=90, max_rows=1000, batch=4) == 4
    with database.unit_of_work() as uow:
        assert uow.requests.prune(now, max_age_s=90, max_rows=1000, batch=4) == 4
    with database.unit_of_work() as uow:
        # Two more by age, then two of the oldest beyond the newest 15.
        assert uow.requests.prune(now, max_age_s=90, max_rows=15, batch=4) == 4
    with database.unit_of_work() as uow:
        assert uow.requests.prune(now, max_age_s=90, max_rows=15, batch=4) == 3
        assert uow.requests.prune(now, max_age_s=90, max_rows=15, batch=4) == 0
    with database.unit_of_work(read_only=True) as uow:
        left = uow.requests.page("iris", limit=100)
    assert _ids(left) == [f"req-{i:06d}" for i in reversed(range(15, 30))]


def test_prune_by_rows_counts_every_endpoint(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.requests.insert_many([record(i, endpoint=("iris", "wine")[i % 2]) for i in range(10)])
    with database.unit_of_work() as uow:
        assert uow.requests.prune(T0, max_age_s=3600, max_rows=4) == 6
    with database.unit_of_work(read_only=True) as uow:
        assert _ids(uow.requests.page("iris")) == ["req-000008", "req-000006"]
        assert _ids(uow.requests.page("wine")) == ["req-000009", "req-000007"]
