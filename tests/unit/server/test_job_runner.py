"""The job runner (`server.jobs.JobRunner.run_once`) on a real store (SQLite and
PostgreSQL), its tasks finished by hand through `TaskRepo.claim/finish` (no dispatcher):
bad lines, input order, the concurrency cap, cancel, resume after a crash, OpenAI batch
lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Table, or_, select, update

from podium.core.phases import EndpointStatus
from podium.core.settings import TaskSettings
from podium.core.spec import EndpointSpec
from podium.core.tasks import (
    JOB_ENDED,
    MAX_TTL_S,
    AttemptOutcome,
    FilePurpose,
    JobStatus,
    TaskStatus,
)
from podium.server.jobs import MAX_JOB_ERRORS, JobRunner
from podium.store import Database
from podium.store.files import FileStore
from podium.store.jobs import OPENAI, JobView, NewJob
from podium.store.tables import TaskRow
from podium.store.task_records import Outcome
from tests.support.db import database, postgres_shared_url, sqlite_url

__all__ = ["database", "postgres_shared_url", "sqlite_url"]  # fixtures


@pytest.fixture
def db(database: Database) -> Database:
    """The migrated store, SQLite and PostgreSQL (`tests.support.db.database`), with an
    endpoint `echo`."""
    with database.unit_of_work() as uow:
        spec = EndpointSpec.model_validate(
            {"name": "echo", "model": "echo:1", "framework": "python"}
        )
        uow.endpoints.create(
            spec, model_ref="echo:1", status=EndpointStatus.RUNNING, desired_replicas=1
        )
    return database


@pytest.fixture
def files(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


def _job(db: Database, files: FileStore, text: bytes, concurrency: int = 2, **kw: object) -> str:
    written = files.write_bytes(text)
    with db.unit_of_work() as uow:
        uow.files.create(written, project="default", filename="in.jsonl", purpose=FilePurpose.BATCH)
        fields: dict[str, object] = {
            "project": "default",
            "endpoint": "echo",
            "input_file": written.id,
            "concurrency": concurrency,
        }
        fields.update(kw)
        return str(uow.jobs.create(NewJob(**fields)).id)


def _get(db: Database, job_id: str) -> JobView:
    with db.unit_of_work(read_only=True) as uow:
        return uow.jobs.get(job_id)


def _answer_all(db: Database, owner: str = "d1") -> list[int]:
    """Claim every pending task of `echo` and answer it with its own body (200), or 500
    once for a body holding "flaky"; returns the lines answered."""
    with db.unit_of_work() as uow:
        claimed = uow.tasks.claim(owner, {"echo": 1000})
        for c in claimed:
            uow.tasks.finish(
                c.id,
                c.attempt,
                owner,
                Outcome(
                    kind=AttemptOutcome.SUCCEEDED,
                    status=200,
                    result=c.body,
                    result_type="application/json",
                ),
            )
    return [c.line for c in claimed if c.line is not None]


def _output(files: FileStore, job: JobView) -> list[dict[str, object]]:
    assert job.output_file is not None
    return [json.loads(line) for line in files.iter_lines(job.output_file)]


INPUT = b'{"x": 0}\nnot json\n{"x": 2}\n[1, 2]\n\n{"x": 4}\n{"x": 5}\n'


def test_lines_run_in_order_under_the_cap_and_bad_lines_fail_without_running(
    db: Database, files: FileStore
) -> None:
    job_id = _job(db, files, INPUT, concurrency=2)
    woken: list[int] = []
    runner = JobRunner(db, files, TaskSettings(), on_enqueued=lambda: woken.append(1))
    runner.run_once()
    assert woken == []  # validated: nothing enqueued yet
    job = _get(db, job_id)
    assert (job.status, job.lines_total) == (JobStatus.IN_PROGRESS, 6)
    answered: list[int] = []
    for _ in range(20):
        runner.run_once()
        with db.unit_of_work(read_only=True) as uow:
            assert uow.jobs.progress(job_id).unfinished <= 2
        answered += _answer_all(db)
        if _get(db, job_id).status is JobStatus.COMPLETED:
            break
    job = _get(db, job_id)
    assert job.status is JobStatus.COMPLETED and job.finished_at is not None
    assert len(woken) == 2  # lines 0-2, then 3-5: one wake per round that enqueued
    assert answered == [0, 2, 4, 5]  # the bad lines 1 and 3 never ran
    out = _output(files, job)
    assert [o["line"] for o in out] == [0, 1, 2, 3, 4, 5]
    assert [o["status"] for o in out] == [
        "succeeded",
        "failed",
        "succeeded",
        "failed",
        "succeeded",
        "succeeded",
    ]
    assert out[0] == {
        "line": 0,
        "status": "succeeded",
        "status_code": 200,
        "result": {"x": 0},
        "error": None,
    }
    assert out[5]["result"] == {"x": 5}
    assert str(out[1]["error"]).startswith("line 1: not JSON")
    assert out[3]["error"] == "line 3: a line must be a JSON object, not list"
    with db.unit_of_work(read_only=True) as uow:
        row = uow.files.get(job.output_file or "")
    assert row.purpose is FilePurpose.BATCH_OUTPUT


def test_cancel_cancels_the_unfinished_lines_and_writes_what_was_done(
    db: Database, files: FileStore
) -> None:
    job_id = _job(db, files, INPUT, concurrency=1)
    runner = JobRunner(db, files, TaskSettings())
    runner.run_once()  # validated
    runner.run_once()  # line 0 enqueued
    assert _answer_all(db) == [0]
    runner.run_once()  # line 1 (bad) and 2 enqueued
    with db.unit_of_work() as uow:
        (running,) = uow.tasks.claim("d1", {"echo": 5})
        uow.jobs.set_status(job_id, JobStatus.CANCELLING)
    assert running.line == 2
    runner.run_once()
    job = _get(db, job_id)
    assert job.status is JobStatus.CANCELLED
    out = _output(files, job)
    assert [o["status"] for o in out] == [
        "succeeded",
        "failed",
        "cancelled",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    assert out[2]["error"] == "the job was cancelled before this line ran"
    with db.unit_of_work() as uow:  # the dispatcher's late answer is stale: nothing changes
        late = uow.tasks.finish(
            running.id, 1, "d1", Outcome(kind=AttemptOutcome.SUCCEEDED, status=200, result=b"1")
        )
    assert late is None


def test_a_new_runner_resumes_and_never_enqueues_a_line_twice(
    db: Database, files: FileStore
) -> None:
    text = b"".join(b'{"x": %d}\n' % i for i in range(25))
    job_id = _job(db, files, text, concurrency=4)
    first = JobRunner(db, files, TaskSettings())
    first.run_once()
    first.run_once()
    _answer_all(db)
    first.run_once()  # lines 4-7 enqueued, then the server "crashes"
    second = JobRunner(db, files, TaskSettings())
    for _ in range(30):
        second.run_once()
        _answer_all(db, owner="d2")
        if _get(db, job_id).status is JobStatus.COMPLETED:
            break
    job = _get(db, job_id)
    assert job.status is JobStatus.COMPLETED
    with db.unit_of_work(read_only=True) as uow:
        lines = [r.line for r in uow.jobs.line_results(job_id, 0, 100)]
    assert lines == list(range(25))  # one task per line
    assert [o["result"] for o in _output(files, job)] == [{"x": i} for i in range(25)]


def test_an_input_over_the_line_limit_fails_the_job(db: Database, files: FileStore) -> None:
    job_id = _job(db, files, b"{}\n{}\n{}\n")
    JobRunner(db, files, TaskSettings(max_job_lines=2)).run_once()
    job = _get(db, job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "the input has more than 2 lines (PODIUM_MAX_JOB_LINES)"


def test_a_job_on_a_missing_endpoint_fails_every_line(db: Database, files: FileStore) -> None:
    job_id = _job(db, files, b"{}\n{}\n", endpoint="gone")
    runner = JobRunner(db, files, TaskSettings())
    for _ in range(4):
        runner.run_once()
    job = _get(db, job_id)
    assert job.status is JobStatus.COMPLETED
    assert [o["error"] for o in _output(files, job)] == [
        "line 0: endpoint 'gone' not found",
        "line 1: endpoint 'gone' not found",
    ]


def test_openai_batch_lines_go_to_the_model_and_failures_to_the_error_file(
    db: Database, files: FileStore
) -> None:
    lines = [
        {
            "custom_id": "a",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "echo", "input": "hi"},
        },
        {"custom_id": "b", "method": "POST", "url": "/v1/embeddings", "body": {"model": "nope"}},
        {
            "custom_id": "c",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "echo"},
        },
    ]
    text = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    job_id = _job(db, files, text, endpoint=None, path="/v1/embeddings", kind=OPENAI)
    runner = JobRunner(db, files, TaskSettings())
    for _ in range(6):
        runner.run_once()
        _answer_all(db)
    job = _get(db, job_id)
    assert job.status is JobStatus.COMPLETED and job.error_file is not None
    out = _output(files, job)
    assert len(out) == 1
    assert out[0]["custom_id"] == "a" and out[0]["error"] is None
    assert out[0]["response"]["status_code"] == 200  # type: ignore[index]
    assert out[0]["response"]["body"] == {"model": "echo", "input": "hi"}  # type: ignore[index]
    errors = [json.loads(x) for x in files.iter_lines(job.error_file)]
    assert [(e["custom_id"], e["error"]["message"]) for e in errors] == [
        ("b", "line 1: model 'nope' not found (no endpoint of that name you may invoke)"),
        (
            "c",
            "line 2: url must be the batch's endpoint '/v1/embeddings', not '/v1/chat/completions'",
        ),
    ]


def _run_until_ended(runner: JobRunner, db: Database, job_ids: list[str], rounds: int = 30) -> None:
    for _ in range(rounds):
        runner.run_once()
        _answer_all(db)
        if all(_get(db, j).status in JOB_ENDED for j in job_ids):
            return


def test_a_deeply_nested_line_fails_alone_and_never_stalls_other_jobs(
    db: Database, files: FileStore
) -> None:
    """Review 2: `json.loads(b"[" * 200000)` raises RecursionError. The line fails at birth
    naming the depth limit; writing the batch's output (its custom ids) does not re-raise;
    an unrelated job, created after it, completes too."""
    good = {"custom_id": "a", "url": "/v1/embeddings", "body": {"model": "echo"}}
    text = b"[" * 200_000 + b"\n" + json.dumps(good).encode() + b"\n"
    batch = _job(db, files, text, endpoint=None, path="/v1/embeddings", kind=OPENAI)
    plain = _job(db, files, b'{"x": 1}\n' + b"[" * 200_000 + b"\n")
    other = _job(db, files, b'{"x": 2}\n')
    _run_until_ended(JobRunner(db, files, TaskSettings()), db, [batch, plain, other])
    assert [_get(db, j).status for j in (batch, plain, other)] == [JobStatus.COMPLETED] * 3
    deep = "line 1: not JSON this server parses: it nests deeper than 64 levels"
    assert [(o["status"], o["error"]) for o in _output(files, _get(db, plain))] == [
        ("succeeded", None),
        ("failed", deep),
    ]
    assert _output(files, _get(db, other))[0]["result"] == {"x": 2}
    job = _get(db, batch)
    assert [o["custom_id"] for o in _output(files, job)] == ["a"]
    assert job.error_file is not None
    errors = [json.loads(x) for x in files.iter_lines(job.error_file)]
    assert [(e["custom_id"], e["error"]["message"]) for e in errors] == [
        (None, deep.replace("line 1", "line 0"))
    ]


def test_a_job_whose_rounds_keep_failing_is_failed_and_the_others_go_on(
    db: Database, files: FileStore
) -> None:
    """Review 2: one job that raises every round (here: its input's bytes were deleted
    under it, found by a restarted server) is failed after MAX_JOB_ERRORS rounds, its
    queued lines cancelled; the job after it completes meanwhile."""
    broken = _job(db, files, b'{"x": 0}\n{"x": 1}\n{"x": 2}\n', concurrency=1)
    other = _job(db, files, b"".join(b'{"y": %d}\n' % i for i in range(4)), concurrency=1)
    runner = JobRunner(db, files, TaskSettings())
    runner.run_once()  # both validated
    runner.run_once()  # line 0 of each enqueued
    files.delete(_get(db, broken).input_file)
    runner = JobRunner(db, files, TaskSettings())  # a restarted server: the input is gone
    _answer_all(db)
    for _ in range(MAX_JOB_ERRORS - 1):
        runner.run_once()
        assert _get(db, broken).status is JobStatus.IN_PROGRESS
        _answer_all(db)
    runner.run_once()
    job = _get(db, broken)
    assert job.status is JobStatus.FAILED
    assert job.error == (
        f"the job runner failed {MAX_JOB_ERRORS} times in a row on this job "
        f"(NotFound: file {job.input_file!r} not found)"
    )
    _run_until_ended(runner, db, [other])
    assert _get(db, other).status is JobStatus.COMPLETED
    assert [o["result"] for o in _output(files, _get(db, other))] == [{"y": i} for i in range(4)]


def test_a_line_over_the_body_limit_fails_alone_naming_the_limit(
    db: Database, files: FileStore
) -> None:
    """Review 8: a line longer than the gateway's max_body_bytes is skipped (never read
    whole) and fails with a reason naming the limit; the lines around it run."""
    big = b'{"x": "' + b"a" * 5000 + b'"}'
    text = b'{"x": 0}\n' + big + b"\r\n" + b'{"x": 2}\n' + big  # the last without a newline
    job_id = _job(db, files, text, concurrency=8)
    runner = JobRunner(db, files, TaskSettings(), max_line_bytes=100)
    _run_until_ended(runner, db, [job_id])
    job = _get(db, job_id)
    assert (job.status, job.lines_total) == (JobStatus.COMPLETED, 4)
    limit = "larger than the limit of 100 bytes a line (a request body: PODIUM_MAX_BODY_BYTES)"
    assert [(o["status"], o["result"], o["error"]) for o in _output(files, job)] == [
        ("succeeded", {"x": 0}, None),
        ("failed", None, f"line 1: {limit}"),
        ("succeeded", {"x": 2}, None),
        ("failed", None, f"line 3: {limit}"),
    ]


def test_an_expired_line_is_labelled_expired_and_job_lines_keep_the_longest_ttl(
    db: Database, files: FileStore
) -> None:
    """Review 3: a line whose task expired is `expired` in the output (never "failed: the
    replica answered 200"), in the error file of an OpenAI batch; and job lines are
    enqueued with the queue's longest TTL, not the endpoint's result_ttl_s."""
    job_id = _job(db, files, b'{"x": 0}\n{"x": 1}\n')
    line = {"custom_id": "k", "url": "/v1/embeddings", "body": {"model": "echo"}}
    batch = _job(
        db, files, json.dumps(line).encode(), endpoint=None, path="/v1/embeddings", kind=OPENAI
    )
    runner = JobRunner(db, files, TaskSettings())
    runner.run_once()
    runner.run_once()
    _answer_all(db)
    tasks = cast(Table, TaskRow.__table__)
    with db.unit_of_work() as uow:
        rows = uow.session.execute(
            select(tasks.c.job_id, tasks.c.line, tasks.c.created_at, tasks.c.expires_at)
        ).all()
        assert sorted((r.job_id, r.line) for r in rows) == sorted(
            [(job_id, 0), (job_id, 1), (batch, 0)]
        )
        assert {r.expires_at - r.created_at for r in rows} == {MAX_TTL_S}
        # what the sweep does to an ended task past its TTL
        uow.session.execute(
            update(tasks)
            .where(or_(tasks.c.line == 0, tasks.c.job_id == batch))
            .values(status=TaskStatus.EXPIRED.value, result=None, result_file=None)
        )
    _run_until_ended(runner, db, [job_id, batch])
    expired = "the result of this line expired before the job's output was written"
    assert [(o["status"], o["result"], o["error"]) for o in _output(files, _get(db, job_id))] == [
        ("expired", None, expired),
        ("succeeded", {"x": 1}, None),
    ]
    job = _get(db, batch)
    assert _output(files, job) == []
    assert job.error_file is not None
    errors = [json.loads(x) for x in files.iter_lines(job.error_file)]
    assert [(e["custom_id"], e["error"]) for e in errors] == [
        ("k", {"code": "batch_expired", "message": expired})
    ]
