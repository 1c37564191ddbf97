"""The file store (`store.files`) and job rows (`store.jobs`) on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.core.clock import FakeClock
from podium.core.errors import Conflict, NotFound, TooLarge
from podium.core.tasks import AttemptOutcome, FilePurpose, JobStatus, TaskStatus
from podium.store import Database
from podium.store.files import CHUNK, FileStore, LongLine, TaskResultFiles, save_result
from podium.store.jobs import NewJob
from podium.store.task_records import NewTask, Outcome


@pytest.fixture
def clocked(database: Database) -> Iterator[tuple[Database, FakeClock]]:
    clock = FakeClock()
    db = Database(database.url, clock=clock)
    yield db, clock
    db.dispose()


def test_file_bytes_are_private_and_written_whole(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    written = store.write([b"ab", b"cd\n", b"ef"])
    assert written.bytes == 7
    assert store.read_bytes(written.id) == b"abcd\nef"
    assert list(store.iter_lines(written.id)) == [b"abcd", b"ef"]
    assert stat.S_IMODE(store.path(written.id).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "files").stat().st_mode) == 0o700
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == [written.id]


def test_a_stream_over_its_bound_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    with pytest.raises(TooLarge) as e:
        store.write([b"x" * 6, b"y" * 6], max_bytes=10)
    assert e.value.field == "file"
    assert list((tmp_path / "files").iterdir()) == []


def test_bounded_lines_never_hold_a_line_over_the_bound(tmp_path: Path) -> None:
    """Review 8: a line longer than `max_line` comes as a `LongLine` (skipped to its end
    in chunks), the lines around it as they are; a line of exactly `max_line` bytes is
    kept, with or without its line end."""
    store = FileStore(tmp_path / "files")
    text = b"12345\n123456\r\n" + b"x" * (3 * CHUNK) + b"\n\n1234567"
    written = store.write_bytes(text)
    assert list(store.iter_bounded_lines(written.id, 6)) == [
        b"12345",
        b"123456",  # 6 bytes (the \r is part of its line end)
        LongLine(6),
        b"",
        LongLine(6),  # the last line, without a line end
    ]
    assert list(store.iter_bounded_lines(written.id, 3 * CHUNK))[2] == b"x" * (3 * CHUNK)


def test_write_from_copies_an_open_file_within_its_bound(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    written = store.write_from(io.BytesIO(b"a" * (CHUNK + 3)), max_bytes=CHUNK + 3)
    assert store.read_bytes(written.id) == b"a" * (CHUNK + 3)
    with pytest.raises(TooLarge):
        store.write_from(io.BytesIO(b"a" * (CHUNK + 4)), max_bytes=CHUNK + 3)
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == [written.id]


def test_an_id_that_is_not_a_file_id_is_not_found(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    with pytest.raises(NotFound) as e:
        store.read_bytes("../podium.db")
    assert e.value.field == "file_id"


def test_file_rows_create_get_list_delete_expire(
    clocked: tuple[Database, FakeClock], tmp_path: Path
) -> None:
    db, clock = clocked
    store = FileStore(tmp_path / "files")
    a = store.write_bytes(b'{"x":1}\n')
    b = store.write_bytes(b"big")
    with db.unit_of_work() as uow:
        uow.files.create(a, project="default", filename="in.jsonl", purpose=FilePurpose.BATCH)
        clock.advance(1)
        rid = save_result(
            uow, store, project="team", data=b"R" * 5, content_type="image/png", ttl_s=60
        )
    with db.unit_of_work(read_only=True) as uow:
        got = uow.files.get(a.id)
        listed = [f.id for f in uow.files.list()]
        only_default = [f.id for f in uow.files.list(frozenset({"default"}))]
        results = uow.files.list(purpose=FilePurpose.TASK_RESULT)
    assert (got.bytes, got.sha256, got.filename, got.purpose) == (
        8,
        a.sha256,
        "in.jsonl",
        FilePurpose.BATCH,
    )
    assert listed == [rid, a.id]
    assert only_default == [a.id]
    assert [(f.id, f.content_type, f.bytes) for f in results] == [(rid, "image/png", 5)]
    assert store.read_bytes(rid) == b"RRRRR"
    with db.unit_of_work(read_only=True) as uow:
        assert uow.files.expired() == []
    clock.advance(61)
    with db.unit_of_work() as uow:
        assert uow.files.expired() == [rid]
        uow.files.delete(a.id)
    with pytest.raises(NotFound) as e, db.unit_of_work() as uow:
        uow.files.get(a.id)
    assert e.value.field == "file_id"
    assert b.id not in listed  # bytes without a row are never listed


def _task(job_id: str, line: int, error: str | None = None) -> NewTask:
    return NewTask(
        endpoint="echo",
        project="default",
        method="POST",
        path="/predict",
        body=b"{}",
        job_id=job_id,
        line=line,
        error=error,
    )


def test_job_status_progress_next_line_and_cancel(
    clocked: tuple[Database, FakeClock],
) -> None:
    db, clock = clocked
    with db.unit_of_work() as uow:
        job = uow.jobs.create(NewJob(project="default", endpoint="echo", input_file="file_x"))
        clock.advance(1)
        other = uow.jobs.create(NewJob(project="team", endpoint="team.a", input_file="file_y"))
    assert job.status is JobStatus.VALIDATING
    with db.unit_of_work() as uow:
        assert uow.jobs.next_line(job.id) == 0
        uow.jobs.set_status(job.id, JobStatus.IN_PROGRESS, lines_total=5)
        uow.tasks.enqueue_many([_task(job.id, i) for i in range(3)] + [_task(job.id, 3, "bad")])
        uow.tasks.enqueue_many([_task(other.id, 0)])
    with db.unit_of_work() as uow:
        (claimed,) = uow.tasks.claim("d1", {"echo": 1})
        uow.tasks.finish(
            claimed.id, 1, "d1", Outcome(kind=AttemptOutcome.SUCCEEDED, status=200, result=b"1")
        )
        (running,) = uow.tasks.claim("d1", {"echo": 1})
    with db.unit_of_work(read_only=True) as uow:
        p = uow.jobs.progress(job.id)
        assert uow.jobs.next_line(job.id) == 4
        assert [j.id for j in uow.jobs.active()] == [job.id, other.id]
        assert [j.id for j in uow.jobs.list(frozenset({"team"}))] == [other.id]
    assert (p.pending, p.running, p.succeeded, p.failed, p.unfinished, p.ended) == (
        1,
        1,
        1,
        1,
        2,
        2,
    )
    with pytest.raises(Conflict) as e, db.unit_of_work() as uow:
        uow.jobs.set_status(job.id, JobStatus.COMPLETED)
    assert e.value.field == "status"
    with db.unit_of_work() as uow:
        uow.jobs.set_status(job.id, JobStatus.CANCELLING)
        assert uow.jobs.cancel_tasks(job.id) == 2
    with db.unit_of_work(read_only=True) as uow:
        p = uow.jobs.progress(job.id)
        assert uow.tasks.get(running.id).status is TaskStatus.CANCELLED
        lines = uow.jobs.line_results(job.id, 0, 10)
        assert uow.jobs.progress(other.id).pending == 1  # the other job's task untouched
    assert (p.cancelled, p.succeeded, p.failed, p.unfinished) == (2, 1, 1, 0)
    assert [(r.line, r.status) for r in lines] == [
        (0, TaskStatus.SUCCEEDED),
        (1, TaskStatus.CANCELLED),
        (2, TaskStatus.CANCELLED),
        (3, TaskStatus.FAILED),
    ]
    assert lines[0].result == b"1" and lines[3].error == "bad"
    with db.unit_of_work() as uow:
        ended = uow.jobs.set_status(job.id, JobStatus.CANCELLED, output_file="file_o")
    assert ended.finished_at is not None and ended.output_file == "file_o"
    with pytest.raises(NotFound) as nf, db.unit_of_work() as uow:
        uow.jobs.get("job_nope")
    assert nf.value.field == "job_id"


def test_the_dispatchers_result_file_hooks(
    clocked: tuple[Database, FakeClock], tmp_path: Path
) -> None:
    db, _ = clocked
    store = FileStore(tmp_path / "files")
    hooks = TaskResultFiles(db, store)
    with db.unit_of_work() as uow:
        uow.tasks.enqueue(_task("job_x", 0))
    with db.unit_of_work() as uow:
        (claimed,) = uow.tasks.claim("d1", {"echo": 1})
    file_id = hooks.save_result(claimed, b"\x89PNG", "image/png")
    with db.unit_of_work(read_only=True) as uow:
        row = uow.files.get(file_id)
    assert (row.purpose, row.content_type, row.bytes) == (FilePurpose.TASK_RESULT, "image/png", 4)
    assert store.read_bytes(file_id) == b"\x89PNG"
    hooks.delete_files([file_id, "file_0"])
    with pytest.raises(NotFound), db.unit_of_work(read_only=True) as uow:
        uow.files.get(file_id)
    assert not store.path(file_id).exists()
