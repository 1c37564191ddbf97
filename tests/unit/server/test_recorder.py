"""The request records' writer on a real SQLite store: every record offered is written
exactly once, a locked database is waited out with the buffer's overflow counted, retention
runs on fake time, and `stop()` writes what is left."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from podium.core.clock import FakeClock
from podium.core.request_record import RecordBuffer
from podium.core.settings import ObservabilitySettings, Settings
from podium.server.app import Podium
from podium.server.recorder import RecordWriter
from podium.store import Database
from podium.store import db as db_module
from tests.support.request_records import T0, record, row


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'podium.db'}")
    database.migrate()
    yield database
    database.dispose()


def stored(db: Database, endpoint: str = "iris") -> int:
    with db.unit_of_work(read_only=True) as uow:
        return uow.requests.count(endpoint)


def test_every_record_offered_is_written_exactly_once(db: Database) -> None:
    """Offers from another thread while the writer drains in batches: the store holds as
    many records as were offered, each request id once."""
    settings = ObservabilitySettings(write_batch=500, flush_s=0.05)
    buffer = RecordBuffer(100_000)
    writer = RecordWriter(db, buffer, settings)
    writer.start()
    n = 12_345

    def offer() -> None:
        for i in range(n):
            assert buffer.offer(row(i))

    offering = threading.Thread(target=offer)
    offering.start()
    offering.join()
    writer.stop()
    assert (writer.written, buffer.dropped, writer.lost, writer.buffered) == (n, 0, 0, 0)
    assert stored(db) == n
    with db.unit_of_work(read_only=True) as uow:
        ids = {s.record.request_id for s in uow.requests.page("iris", limit=5000)}
    assert len(ids) == 5000  # the newest 5000 are distinct requests


def test_a_full_batch_is_written_before_the_flush_interval(db: Database) -> None:
    settings = ObservabilitySettings(write_batch=100, flush_s=3600.0)
    buffer = RecordBuffer(1000)
    writer = RecordWriter(db, buffer, settings)
    writer.start()
    try:
        for i in range(250):
            buffer.offer(row(i))
        wait_until(lambda: writer.written == 200)  # two full batches; 50 wait for more
        assert writer.buffered == 50
    finally:
        writer.stop()
    assert stored(db) == 250  # stop wrote the rest


def test_stop_flushes_what_is_buffered(db: Database) -> None:
    settings = ObservabilitySettings(write_batch=10_000, flush_s=3600.0, prune_every_s=3600.0)
    buffer = RecordBuffer(10_000)
    writer = RecordWriter(db, buffer, settings)
    writer.start()
    for i in range(777):
        buffer.offer(row(i))
    writer.stop()
    assert (writer.written, stored(db), len(buffer)) == (777, 777, 0)


def test_a_locked_database_is_waited_out_and_the_overflow_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock: the writer keeps its one batch and
    retries with backoff; it drains nothing more, so the buffer fills and the offers past
    its capacity are dropped and counted. Once the lock goes, everything kept is written."""
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_S", 0.05)  # fail fast on the lock
    monkeypatch.setattr(db_module, "_SQLITE_PRAGMAS", ("busy_timeout=50", "foreign_keys=ON"))
    path = tmp_path / "locked.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the other process's write transaction
    settings = ObservabilitySettings(write_batch=10, flush_s=0.01, prune_every_s=3600.0)
    buffer = RecordBuffer(50)
    writer = RecordWriter(db, buffer, settings, backoff_s=0.01, backoff_max_s=0.05)
    registry = CollectorRegistry()
    registry.register(writer)
    writer.start()
    try:
        for i in range(10):
            buffer.offer(row(i))
        wait_until(lambda: writer.write_errors >= 2 and len(buffer) == 0)
        assert writer.buffered == 10  # the batch it holds for a retry
        for i in range(10, 100):
            buffer.offer(row(i))
        assert (len(buffer), buffer.dropped) == (50, 40)
        scraped = generate_latest(registry).decode()
        assert 'podium_request_records_dropped_total{reason="buffer_full"} 40.0' in scraped
        assert "podium_request_records_buffered 60.0" in scraped
        assert "podium_request_records_written_total 0.0" in scraped
        other.execute("ROLLBACK")
        wait_until(lambda: writer.written == 60)
    finally:
        other.close()
        writer.stop()
    assert (stored(db), writer.lost, writer.buffered) == (60, 0, 0)
    with db.unit_of_work(read_only=True) as uow:
        kept = sorted(s.record.request_id for s in uow.requests.page("iris", limit=100))
    assert kept == [f"req-{i:06d}" for i in range(60)]  # the first 60 offered, none twice
    db.dispose()


def test_a_record_the_store_refuses_is_dropped_alone(db: Database) -> None:
    settings = ObservabilitySettings(write_batch=100, flush_s=3600.0, prune_every_s=3600.0)
    buffer = RecordBuffer(100)
    writer = RecordWriter(db, buffer, settings)
    for i in range(5):
        buffer.offer(row(i, bytes_in=2**70 if i == 2 else 100))  # past SQLite's INTEGER
    writer.stop()  # never started: stop writes in the caller's thread
    assert (writer.written, writer.lost, writer.write_errors) == (4, 1, 1)
    with db.unit_of_work(read_only=True) as uow:
        ids = sorted(s.record.request_id for s in uow.requests.page("iris"))
    assert ids == ["req-000000", "req-000001", "req-000003", "req-000004"]


def test_stop_gives_up_after_its_timeout_and_counts_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(db_module, "_SQLITE_PRAGMAS", ("busy_timeout=50", "foreign_keys=ON"))
    path = tmp_path / "locked.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    settings = ObservabilitySettings(write_batch=10, flush_s=3600.0, prune_every_s=3600.0)
    buffer = RecordBuffer(100)
    writer = RecordWriter(db, buffer, settings, backoff_s=0.01, stop_timeout_s=0.3)
    for i in range(25):
        buffer.offer(row(i))
    writer.stop()
    other.close()
    assert (writer.written, writer.lost, writer.buffered, len(buffer)) == (0, 25, 0, 0)
    assert writer.write_errors >= 1
    db.dispose()


def test_retention_runs_on_fake_time(db: Database) -> None:
    """Pruning runs at start and every `prune_every_s` of the clock: records older than
    `records_max_age_s` go, then the oldest beyond `records_max_rows`."""
    clock = FakeClock(start=1000.0)
    assert clock.now().timestamp() == T0 + 1000.0
    with db.unit_of_work() as uow:
        uow.requests.insert_many([record(i) for i in range(0, 1000, 10)])  # T0 … T0 + 990
    settings = ObservabilitySettings(
        records_max_age_s=500.0, records_max_rows=60, prune_every_s=60.0, flush_s=3600.0
    )
    writer = RecordWriter(db, RecordBuffer(10), settings, clock)
    writer.start()
    try:
        wait_until(lambda: writer.pruned == 50)  # at start: those received before T0 + 500
        assert stored(db) == 50
        with db.unit_of_work() as uow:
            uow.requests.insert_many([record(i) for i in range(1000, 1020)])  # 70 now
        clock.advance(30.0)  # not yet time
        time.sleep(0.2)
        assert (writer.pruned, stored(db)) == (50, 70)
        clock.advance(30.0)  # a minute on: 500-550 are too old, then 4 beyond 60 rows
        wait_until(lambda: writer.pruned == 60)
    finally:
        writer.stop()
    with db.unit_of_work(read_only=True) as uow:
        left = [s.record.received_at for s in uow.requests.page("iris", limit=100)]
    expected = [T0 + i for i in range(1019, 999, -1)] + [T0 + i for i in range(990, 590, -10)]
    assert left == expected


def test_the_server_runs_the_writer_and_serves_its_metrics(tmp_path: Path) -> None:
    """`Podium` (the embedded server): records offered to its buffer are in the store once
    it has shut down, and its /metrics registry carries the writer's counts."""
    podium = Podium(Settings(home=tmp_path / "home", port=0))
    assert podium.records is not None and podium.recorder is not None

    async def run() -> None:
        await podium.startup()
        try:
            for i in range(300):
                assert podium.records is not None
                podium.records.offer(row(i))
        finally:
            await podium.shutdown()

    asyncio.run(run())
    assert podium.recorder.written == 300
    scraped = generate_latest(podium.registry).decode()  # the server's one registry
    assert "podium_request_records_written_total 300.0" in scraped
    db = Database(podium.settings.database_url)
    assert stored(db) == 300
    db.dispose()
    off = Podium(Settings(home=tmp_path / "off", port=0).with_overrides(
        observability=ObservabilitySettings(records=False)))  # fmt: skip
    assert (off.records, off.recorder) == (None, None)
    off.db.dispose()
