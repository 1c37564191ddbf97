"""Processes and threads migrating one SQLite file wait for each other; none fails.

`podium up`, tests and the alembic CLI all migrate at start. Two of them racing on a new
file used to fail now and then with `Retryable('the database is busy; try again')`: the
switch to WAL fails at once, without the busy timeout, while another connection writes in
rollback mode, and a migration gave up on the write lock after the 5 s busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from podium.store.db import BUSY_TIMEOUT_S, Database


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def test_migrate_waits_for_a_writer_still_in_rollback_mode(tmp_path: Path) -> None:
    path = tmp_path / "podium.db"
    # The first connection to a new file, writing before it switched to WAL.
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE other_tool (x INTEGER)")
    done = threading.Timer(1.0, writer.execute, args=("COMMIT",))
    done.start()
    db = Database(f"sqlite:///{path}")
    try:
        db.migrate()  # used to fail at once: "database is locked"
    finally:
        done.join()
        writer.close()
        db.dispose()
    assert _journal_mode(path) == "wal"


def test_migrate_waits_for_a_unit_of_work_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'podium.db'}"
    server, migrator = Database(url), Database(url)
    server.migrate()
    holding, release = threading.Event(), threading.Event()

    def long_unit_of_work() -> None:
        with server.unit_of_work() as uow:  # holds the write lock until released
            uow.session.execute(text("SELECT 1"))
            holding.set()
            release.wait(60)

    t = threading.Thread(target=long_unit_of_work)
    t.start()
    try:
        assert holding.wait(60)
        threading.Timer(BUSY_TIMEOUT_S + 1.0, release.set).start()
        migrator.migrate()  # used to fail after BUSY_TIMEOUT_S: "the database is busy"
    finally:
        release.set()
        t.join(60)
        server.dispose()
        migrator.dispose()


def test_threads_migrating_new_files_at_once_all_succeed(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    for round_ in range(40):
        url = f"sqlite:///{tmp_path / str(round_) / 'podium.db'}"
        databases = [Database(url) for _ in range(3)]
        barrier = threading.Barrier(len(databases))

        def migrate(db: Database, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait()
                db.migrate()
            except BaseException as e:  # reported below
                errors.append(e)
            finally:
                db.dispose()

        threads = [threading.Thread(target=migrate, args=(db,)) for db in databases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
