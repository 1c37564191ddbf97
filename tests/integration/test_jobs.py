"""Batch jobs end to end through a real `podium up` (issue 13): a 5,000-line job with bad
lines mixed in, the CLI, cancel, the official `openai` client's Batch API, and a server
killed (SIGKILL) mid-job whose restart finishes it without running a line twice.

Needs the dispatcher (helper "dispatch") to run the tasks; `test_cancel_*` does not."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from podium.client import JobOut
from podium.core.tasks import JobStatus
from podium.store import Database
from tests.support.models import write_python_bundle
from tests.support.server import (
    ServerProcess,
    free_port,
    running_server,
    wait_running,
    wait_until,
)

BYO = str(Path(__file__).resolve().parents[1] / "support" / "byo_server.py")


# The module's `server` runs on SQLite and again on PostgreSQL (tests/integration/conftest.py).
DATABASES = ("sqlite", "postgres")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_env: dict[str, str]
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("models")
    with running_server(tmp_path_factory.mktemp("podium"), **database_env) as s, s.client() as c:
        c.push_model(write_python_bundle(tmp / "echo"), "echo", framework="python")
        c.push_model(write_python_bundle(tmp / "slow", sleep_s=0.2), "slow", framework="python")
        (tmp / "byo").mkdir()
        (tmp / "byo" / "message.txt").write_text("weights: 42", encoding="utf-8")
        c.push_model(tmp / "byo", "byo-model")
        c.deploy({"name": "echo", "model": "echo", "framework": "python", "max_concurrency": 32})
        c.deploy({"name": "slow", "model": "slow", "framework": "python"})
        c.deploy(
            {
                "name": "embedder",
                "model": "byo-model",
                "framework": "command",
                "command": {"command": sys.executable, "args": [BYO], "health_route": "/health"},
            }
        )
        for name in ("echo", "slow", "embedder"):
            wait_running(c, name, timeout=90)
        yield s


def _lines(n: int, bad: dict[int, str]) -> bytes:
    return "".join(bad.get(i, json.dumps({"inputs": i})) + "\n" for i in range(n)).encode()


def test_a_5000_line_job_with_bad_lines_completes_in_order(
    server: ServerProcess, tmp_path: Path
) -> None:
    bad = {7: "not json", 1234: "[1, 2]", 4999: '"a string"', 2500: '{"no": "inputs"}'}
    source = tmp_path / "in.jsonl"
    source.write_bytes(_lines(5000, bad))
    with server.client() as c:
        job = c.create_job("echo", source, path="/", concurrency=32)
        seen: list[JobOut] = []
        info = job.wait(progress=seen.append, timeout=300, poll_s=0.5)
        out = job.output()
    assert info.status is JobStatus.COMPLETED
    assert (info.lines_total, info.lines_done, info.lines_failed) == (5000, 5000, 4)
    assert info.lines_succeeded == 4996 and info.rate_per_s is not None and info.eta_s is None
    assert all(s.lines_done <= s.lines_total for s in seen)
    assert [o["line"] for o in out] == list(range(5000))
    failed = {o["line"] for o in out if o["status"] == "failed"}
    assert failed == set(bad)
    assert out[7]["status_code"] is None and out[7]["error"].startswith("line 7: not JSON")
    assert out[1234]["error"] == "line 1234: a line must be a JSON object, not list"
    assert 400 <= out[2500]["status_code"] < 500  # the replica refused it: not retried
    assert out[0] == {
        "line": 0,
        "status": "succeeded",
        "status_code": 200,
        "result": {"version": 1, "echo": 0},
        "error": None,
    }
    assert out[4998]["result"] == {"version": 1, "echo": 4998}


def test_cli_create_wait_output_ls_get(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "small.jsonl"
    source.write_bytes(_lines(20, {3: "oops"}))
    out_file = tmp_path / "out.jsonl"
    made = server.cli(
        "jobs", "create", "echo", "--input", str(source), "--path", "/",
        "--output", str(out_file), "-c", "4", check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "19 succeeded, 1 failed of 20" in made.stdout
    rows = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert [r["status"] for r in rows].count("failed") == 1 and rows[3]["status"] == "failed"
    job_id = made.stdout.split()[1]
    got = json.loads(server.cli("jobs", "get", job_id).stdout)
    assert (got["id"], got["status"], got["lines_total"]) == (job_id, "completed", 20)
    assert job_id in server.cli("jobs", "ls", "echo").stdout
    printed = server.cli("jobs", "output", job_id).stdout.splitlines()
    assert [json.loads(x) for x in printed] == rows


def test_cancel_ends_the_job_with_the_lines_done_so_far(
    server: ServerProcess, tmp_path: Path
) -> None:
    source = tmp_path / "long.jsonl"
    source.write_bytes(_lines(200, {}))
    with server.client() as c:
        job = c.create_job("slow", source, path="/", concurrency=2)
        wait_until(lambda: job.refresh().status is JobStatus.IN_PROGRESS, 30, "in progress")
        cancelled = server.cli("jobs", "cancel", job.id)
        assert f"job {job.id} cancelling" in cancelled.stdout
        info = job.wait(timeout=60)
        out = job.output()
    assert info.status is JobStatus.CANCELLED and info.finished_at is not None
    assert len(out) == 200 and [o["line"] for o in out] == list(range(200))
    statuses = [o["status"] for o in out]
    assert statuses[-1] == "cancelled" and set(statuses) <= {"succeeded", "cancelled"}
    assert statuses.count("succeeded") == info.lines_succeeded


def test_the_openai_client_runs_a_batch(server: ServerProcess, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.token, max_retries=0)
    requests = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "embedder" if i != 2 else "no-such-model", "input": f"text {i}"},
        }
        for i in range(5)
    ]
    source = tmp_path / "batch.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in requests))
    with source.open("rb") as handle:
        uploaded = client.files.create(file=handle, purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == source.stat().st_size
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/embeddings",
        completion_window="24h",
        metadata={"suite": "jobs"},
    )
    assert batch.status == "validating" and batch.metadata == {"suite": "jobs"}

    def ended() -> bool:
        return client.batches.retrieve(batch.id).status in ("completed", "failed")

    wait_until(ended, timeout=60, what="the batch to end")
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (5, 4)
    assert done.request_counts.failed == 1
    assert done.output_file_id is not None and done.error_file_id is not None
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert [o["custom_id"] for o in out] == ["req-0", "req-1", "req-3", "req-4"]
    first = out[0]["response"]
    assert first["status_code"] == 200 and first["body"]["path"] == "/v1/embeddings"
    assert json.loads(first["body"]["body"]) == {"model": "embedder", "input": "text 0"}
    errors = client.files.content(done.error_file_id).text.splitlines()
    assert [json.loads(e)["custom_id"] for e in errors] == ["req-2"]
    assert batch.id in [b.id for b in client.batches.list(limit=10).data]
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("job_000000")


def test_a_killed_server_resumes_its_job_and_runs_no_line_twice(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", free_port(), {"PODIUM_TASK_SWEEP_S": "1"})
    server.start()
    try:
        with server.client() as c:
            bundle = write_python_bundle(tmp_path / "slowish", sleep_s=0.05)
            c.push_model(bundle, "slowish", framework="python")
            # A short lease: the tasks the killed server ran are taken over seconds later.
            c.deploy(
                {
                    "name": "slowish",
                    "model": "slowish",
                    "framework": "python",
                    "timeout_s": 5,
                    "tasks": {"lease_s": 6},
                }
            )
            wait_running(c, "slowish", timeout=90)
            source = tmp_path / "in.jsonl"
            source.write_bytes(_lines(300, {}))
            job = c.create_job("slowish", source, path="/", concurrency=8)
            wait_until(lambda: job.refresh().lines_done >= 40, 60, "40 lines done")
        server.stop(signal.SIGKILL)
        server.start()
        with server.client() as c:
            info = c.job(job.id).wait(timeout=120)
            out = c.job(job.id).output()
    finally:
        server.stop()
    assert info.status is JobStatus.COMPLETED and info.lines_succeeded == 300
    assert [o["line"] for o in out] == list(range(300))
    assert [o["result"]["echo"] for o in out] == list(range(300))
    db = Database(f"sqlite:///{tmp_path / 'home' / 'podium.db'}")
    try:
        with db.unit_of_work(read_only=True) as uow:
            lines = [r.line for r in uow.jobs.line_results(job.id, 0, 1000)]
    finally:
        db.dispose()
    assert lines == list(range(300))  # one task per line: none enqueued twice
