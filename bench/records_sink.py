"""The request records' way to the store, for `bench/gateway.py --records`.

`start_sink(buffer, url)` drains a `RecordBuffer` from a writer thread in the gateway's
process into a real SQLite store (`podium.store.db.Database`, migrated), as the server
does. `write_batch` is the one function that writes; once the server's own writer
(`server/recorder.py`) exists, `start_sink` is the one place to swap for it.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import pickle
import threading
import time
from collections.abc import Callable
from itertools import chain
from multiprocessing.connection import Connection
from operator import attrgetter
from pathlib import Path

from sqlalchemy import bindparam, insert

from podium.core.request_record import RecordBuffer, RequestRecord
from podium.core.settings import ObservabilitySettings
from podium.store.db import Database
from podium.store.tables import RequestRecordRow

FIELDS = tuple(f.name for f in dataclasses.fields(RequestRecord))
# Rows per INSERT statement (26 parameters each; SQLite allows 32,766 since 3.32): small
# enough that binding one holds the GIL briefly (the event loop waits for it meanwhile).
ROWS_PER_STATEMENT = 100
Row = Callable[[RequestRecord], tuple[object, ...]]


def insert_sql(db: Database) -> tuple[str, Row]:
    """The Core `insert(RequestRecordRow)` of FIELDS compiled once for the dialect, and the
    function that makes a record the tuple of its parameters, in the statement's order."""
    stmt = insert(RequestRecordRow).values({name: bindparam(name) for name in FIELDS})
    compiled = stmt.compile(dialect=db.engine.dialect)
    order = compiled.positiontup or []
    assert sorted(order) == sorted(FIELDS)
    return str(compiled), attrgetter(*order)


def write_batch(db: Database, sql: str, row: Row, records: list[RequestRecord]) -> None:
    """One transaction: `records` inserted ROWS_PER_STATEMENT at a time, as one statement
    with that many VALUES tuples (`INSERT … VALUES (…), (…), …`).

    Why not `executemany`: SQLite's module releases the GIL around every row's step and
    takes it back after, so a writer thread inserting row by row hands the GIL to the busy
    event loop and waits up to the switch interval (5 ms) for it, once per row: in a test
    with a busy main thread 50,000 rows took 209 s (59 µs of CPU a row) against 1.3 s
    (8.6 µs) in statements of 500 rows. One statement is one step: the GIL is released once
    for the B-tree work of its rows."""
    head, _, values = sql.partition(" VALUES ")
    with db.engine.begin() as conn:
        for start in range(0, len(records), ROWS_PER_STATEMENT):
            chunk = records[start : start + ROWS_PER_STATEMENT]
            statement = f"{head} VALUES {','.join([values] * len(chunk))}"
            conn.exec_driver_sql(statement, tuple(chain.from_iterable(map(row, chunk))))


def start_sink(
    buffer: RecordBuffer,
    url: str,
    report: Path | None = None,
    settings: ObservabilitySettings | None = None,
) -> Callable[[], dict[str, float]]:
    """Start the writer thread; returns `stop()`, which flushes what is buffered, stops the
    thread and returns the records offered, dropped and written. Each time the thread has
    emptied the buffer it also writes those counts to `report` (JSON): uvicorn ends its
    process by re-raising SIGTERM, so nothing runs after it stops serving."""
    settings = settings or ObservabilitySettings()
    db = Database(url)
    db.migrate()
    sql, row = insert_sql(db)
    done = threading.Event()
    written = 0
    cpu_s = 0.0  # the writer thread's own CPU time

    def counts() -> dict[str, float]:
        return {
            "offered": buffer.offered,
            "dropped": buffer.dropped,
            "written": written,
            "writer_cpu_us_per_record": round(cpu_s / max(written, 1) * 1e6, 1),
        }

    def run() -> None:
        nonlocal written, cpu_s
        reported = -1
        while True:
            batch = buffer.drain(settings.write_batch)
            if batch:
                began = time.thread_time()
                write_batch(db, sql, row, batch)
                cpu_s += time.thread_time() - began
                written += len(batch)
                continue
            if report is not None and written != reported:
                reported = written
                report.write_text(json.dumps(counts()), encoding="utf-8")
            if done.is_set():
                return
            done.wait(settings.flush_s)

    thread = threading.Thread(target=run, name="podium-records-sink", daemon=True)
    thread.start()

    def stop() -> dict[str, float]:
        done.set()
        thread.join(60)
        return counts()

    return stop


def _child(url: str, receiver: Connection) -> None:
    """The writer process: batches of rows (pickled tuples) from the pipe into the store."""
    db = Database(url)
    sql, _ = insert_sql(db)
    while True:
        try:
            data = receiver.recv_bytes()
        except EOFError:
            return
        rows: list[tuple[object, ...]] = pickle.loads(data)
        head, _, values = sql.partition(" VALUES ")
        with db.engine.begin() as conn:
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[start : start + ROWS_PER_STATEMENT]
                statement = f"{head} VALUES {','.join([values] * len(chunk))}"
                conn.exec_driver_sql(statement, tuple(chain.from_iterable(chunk)))


def start_process_sink(
    buffer: RecordBuffer, url: str, settings: ObservabilitySettings | None = None
) -> Callable[[], None]:
    """An experiment: the same writer in a child process. A thread in the gateway's process
    drains the buffer and pickles each batch's tuples into a pipe (the pickle memoizes the
    values repeated on every row: endpoint, enums); the SQLite work and its GIL stay out of
    the gateway's process."""
    settings = settings or ObservabilitySettings()
    Database(url).migrate()
    _, row = insert_sql(Database(url))
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(url, receiver), daemon=True)
    child.start()
    done = threading.Event()

    def run() -> None:
        while True:
            batch = buffer.drain(settings.write_batch)
            if batch:
                sender.send_bytes(pickle.dumps([row(r) for r in batch], protocol=5))
                continue
            if done.is_set():
                return
            done.wait(settings.flush_s)

    thread = threading.Thread(target=run, name="podium-records-pipe", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(60)
        sender.close()
        child.join(60)

    return stop
