"""Files, jobs and OpenAI batches over the real API (a migrated SQLite store, real tokens);
the job runner is run by hand (`run_once`) and tasks are answered through
`TaskRepo.claim/finish`, so no dispatcher or replica is needed."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from podium.client import Conflict, JobOut, PodiumClient
from podium.client._jobs import progress_line
from podium.core.access import Scope
from podium.core.phases import EndpointStatus
from podium.core.spec import EndpointSpec
from podium.core.tasks import AttemptOutcome, JobStatus
from podium.server.jobs import JobRunner
from podium.store import Database
from podium.store.files import FileStore
from podium.store.task_records import Outcome
from tests.unit.api.conftest import make_token


@pytest.fixture(autouse=True)
def echo(db: Database) -> None:
    with db.unit_of_work() as uow:
        spec = EndpointSpec.model_validate(
            {"name": "echo", "model": "echo:1", "framework": "python"}
        )
        uow.endpoints.create(
            spec, model_ref="echo:1", status=EndpointStatus.RUNNING, desired_replicas=1
        )


def _runner(ctx: ApiContext) -> JobRunner:
    return JobRunner(ctx.db, FileStore(ctx.settings.files_dir), ctx.settings.tasks)


def _drive(ctx: ApiContext, rounds: int = 10) -> None:
    """Run the runner and answer every task with its own body, a few rounds."""
    runner = _runner(ctx)
    for _ in range(rounds):
        runner.run_once()
        with ctx.db.unit_of_work() as uow:
            for c in uow.tasks.claim("d1", {"echo": 1000}):
                uow.tasks.finish(
                    c.id,
                    c.attempt,
                    "d1",
                    Outcome(kind=AttemptOutcome.SUCCEEDED, status=200, result=c.body),
                )


def _upload(client: TestClient, data: bytes, url: str = "/api/v1/files") -> Any:
    return client.post(url, files={"file": ("in.jsonl", data)}, data={"purpose": "batch"})


def test_upload_create_watch_and_read_a_job(client: TestClient, ctx: ApiContext) -> None:
    up = _upload(client, b'{"a": 1}\n[2]\n{"a": 3}\n')
    assert up.status_code == 201, up.text
    f = up.json()
    assert (f["bytes"], f["purpose"], f["filename"]) == (22, "batch", "in.jsonl")
    assert client.get(f"/api/v1/files/{f['id']}").json() == f
    assert client.get(f"/api/v1/files/{f['id']}/content").content == b'{"a": 1}\n[2]\n{"a": 3}\n'
    made = client.post("/api/v1/jobs", json={"endpoint": "echo", "input_file": f["id"]})
    assert made.status_code == 201, made.text
    job = made.json()
    assert (job["status"], job["endpoint"], job["concurrency"], job["path"]) == (
        "validating",
        "echo",
        8,
        "/",  # the built-in runtimes' predict route
    )
    _drive(ctx)
    done = client.get(f"/api/v1/jobs/{job['id']}").json()
    assert done["status"] == "completed"
    assert (done["lines_total"], done["lines_done"], done["lines_succeeded"]) == (3, 3, 2)
    assert (done["lines_failed"], done["lines_pending"], done["eta_s"]) == (1, 0, None)
    out = client.get(f"/api/v1/files/{done['output_file']}/content").text.splitlines()
    assert [json.loads(x)["status"] for x in out] == ["succeeded", "failed", "succeeded"]
    assert json.loads(out[2])["result"] == {"a": 3}
    listed = client.get("/api/v1/jobs", params={"endpoint": "echo"}).json()["items"]
    assert [j["id"] for j in listed] == [job["id"]]
    gone = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert gone.status_code == 409 and gone.json()["field"] == "status"


def test_job_refusals_name_the_field(client: TestClient) -> None:
    f = _upload(client, b"{}\n").json()
    cases = [
        ({"endpoint": "nope", "input_file": f["id"]}, 404, "endpoint"),
        ({"endpoint": "echo", "input_file": "file_000"}, 404, "input_file"),
        ({"endpoint": "echo", "input_file": f["id"], "concurrency": 0}, 422, "concurrency"),
        ({"endpoint": "echo", "input_file": f["id"], "concurrency": 257}, 422, "concurrency"),
    ]
    for body, status, field in cases:
        r = client.post("/api/v1/jobs", json=body)
        assert (r.status_code, r.json()["field"]) == (status, field), r.text
    bad = client.post("/api/v1/files", files={"file": ("x", b"{}")}, data={"purpose": "fine-tune"})
    assert (bad.status_code, bad.json()["field"]) == (422, "purpose")


def test_an_upload_over_the_file_limit_is_413(ctx: ApiContext, client: TestClient) -> None:
    import dataclasses

    ctx.settings = dataclasses.replace(
        ctx.settings, tasks=dataclasses.replace(ctx.settings.tasks, max_file_bytes=10)
    )
    r = _upload(client, b"x" * 11)
    assert r.status_code == 413 and r.json()["field"] == "file"
    assert not any(ctx.settings.files_dir.glob("file_*"))


def test_jobs_of_another_project_do_not_exist_for_a_token_bound_elsewhere(
    client: TestClient, ctx: ApiContext, db: Database
) -> None:
    f = _upload(client, b"{}\n").json()
    job = client.post("/api/v1/jobs", json={"endpoint": "echo", "input_file": f["id"]}).json()
    assert ctx.tokens is not None
    with db.unit_of_work() as uow:
        uow.projects.create("team")
    other = make_token(db, "team-invoker", (Scope.INVOKE,), ("team",), ctx.tokens)
    reader = make_token(db, "reader", (Scope.READ,), ("default",), ctx.tokens)
    h = {"Authorization": f"Bearer {other}"}
    r = client.get(f"/api/v1/jobs/{job['id']}", headers=h)
    assert (r.status_code, r.json()["field"]) == (404, "job_id")
    r = client.get(f"/api/v1/files/{f['id']}/content", headers=h)
    assert (r.status_code, r.json()["field"]) == (404, "file_id")
    r = client.get(f"/api/v1/jobs/{job['id']}", headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403


def test_cancel_through_the_api(client: TestClient, ctx: ApiContext) -> None:
    f = _upload(client, b"{}\n" * 20).json()
    job = client.post(
        "/api/v1/jobs", json={"endpoint": "echo", "input_file": f["id"], "concurrency": 2}
    ).json()
    runner = _runner(ctx)
    runner.run_once()
    runner.run_once()
    r = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelling"
    runner.run_once()
    ended = client.get(f"/api/v1/jobs/{job['id']}").json()
    assert ended["status"] == "cancelled" and ended["lines_done"] == 2
    out = client.get(f"/api/v1/files/{ended['output_file']}/content").text.splitlines()
    assert len(out) == 20 and {json.loads(x)["status"] for x in out} == {"cancelled"}


def test_openai_batches_shapes_and_errors(client: TestClient, ctx: ApiContext) -> None:
    line = {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "echo", "input": "x"},
    }
    f = _upload(client, json.dumps(line).encode() + b"\n", url="/v1/files")
    assert f.status_code == 200, f.text
    assert f.json()["object"] == "file" and f.json()["purpose"] == "batch"
    made = client.post(
        "/v1/batches",
        json={
            "input_file_id": f.json()["id"],
            "endpoint": "/v1/embeddings",
            "completion_window": "24h",
            "metadata": {"run": "1"},
        },
    )
    assert made.status_code == 200, made.text
    batch = made.json()
    assert (batch["object"], batch["status"], batch["metadata"]) == (
        "batch",
        "validating",
        {"run": "1"},
    )
    _drive(ctx)
    got = client.get(f"/v1/batches/{batch['id']}").json()
    assert got["status"] == "completed"
    assert got["request_counts"] == {"total": 1, "completed": 1, "failed": 0}
    assert got["completed_at"] is not None and got["error_file_id"] is not None
    out = json.loads(client.get(f"/v1/files/{got['output_file_id']}/content").text)
    assert out["custom_id"] == "r1" and out["error"] is None
    assert out["response"]["status_code"] == 200
    assert out["response"]["body"] == {"model": "echo", "input": "x"}
    listed = client.get("/v1/batches", params={"limit": 5}).json()
    assert (listed["object"], [b["id"] for b in listed["data"]], listed["has_more"]) == (
        "list",
        [batch["id"]],
        False,
    )
    bad = client.post("/v1/batches", json={"input_file_id": "file_0", "endpoint": "/v1/nope"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "endpoint"
    assert bad.json()["error"]["type"] == "invalid_request_error"
    missing = client.get("/v1/batches/job_0")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    anon = client.get("/v1/batches", headers={"Authorization": "Bearer nope"})
    assert anon.status_code == 401 and "error" in anon.json()


def test_the_sdk_creates_waits_for_and_reads_a_job(
    server_url: str, ctx: ApiContext, admin_token: str, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"a": 1}\n{"a": 2}\n')
    with PodiumClient(server_url, token=admin_token) as c:
        job = c.create_job("echo", source, path="/", concurrency=4)
        assert job.info.status is JobStatus.VALIDATING and job.info.path == "/"
        seen: list[JobStatus] = []

        def step(info: JobOut) -> None:  # each poll: the runner and a "dispatcher" run
            seen.append(info.status)
            _drive(ctx, rounds=1)

        ended = job.wait(progress=step, timeout=30, poll_s=0.01)
        assert ended.status is JobStatus.COMPLETED and seen[-1] is JobStatus.COMPLETED
        assert [o["result"] for o in job.output()] == [{"a": 1}, {"a": 2}]
        assert [j.id for j in c.jobs("echo")] == [job.id]
        again = c.create_job("echo", ended.input_file, path="/")  # a file id, not uploaded again
        assert again.info.input_file == ended.input_file
        with pytest.raises(Conflict) as e:
            job.cancel()
        assert e.value.field == "status"
    assert "job_" in progress_line(ended) and "2/2 lines (0 failed)" in progress_line(ended)


def test_a_body_far_over_the_file_limit_is_refused_before_it_is_parsed(
    tmp_path: Path, db: Database, admin_headers: dict[str, str]
) -> None:
    import dataclasses

    from podium.api import create_api
    from podium.artifacts.store import ArtifactStore
    from podium.backends.local_logs import LocalLogs
    from podium.core.access import TokenDirectory
    from podium.core.settings import Settings, TaskSettings
    from tests.unit.api.conftest import live_tokens

    settings = dataclasses.replace(
        Settings(home=tmp_path / "h", port=8123), tasks=TaskSettings(max_file_bytes=1000)
    )
    ctx = ApiContext(
        settings=settings,
        db=db,
        artifacts=ArtifactStore(settings.artifacts_dir),
        logs=LocalLogs(settings.logs_dir, settings.log_retention),
        wake=lambda _=None: None,
        tokens=TokenDirectory(live_tokens(db)),
    )
    with TestClient(create_api(ctx), headers=admin_headers) as client:
        big = b"x" * (1000 + 70 * 1024)
        for url in ("/api/v1/files", "/v1/files"):
            r = client.post(url, files={"file": ("in.jsonl", big)}, data={"purpose": "batch"})
            assert r.status_code == 413, r.text
            assert "PODIUM_MAX_FILE_BYTES" in r.text
        small = _upload(client, b"x" * 1001)  # past the store's bound, within the body's
        assert small.status_code == 413 and small.json()["field"] == "file"


def test_a_task_result_kept_as_a_file_is_served_with_its_type(
    client: TestClient, ctx: ApiContext
) -> None:
    from podium.store.files import TaskResultFiles
    from podium.store.task_records import NewTask

    with ctx.db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(
            NewTask(endpoint="echo", project="default", method="POST", path="/", body=b"{}")
        )
    with ctx.db.unit_of_work() as uow:
        (claimed,) = uow.tasks.claim("d1", {"echo": 1})
    hooks = TaskResultFiles(ctx.db, FileStore(ctx.settings.files_dir))
    file_id = hooks.save_result(claimed, b"\x89PNG" * 1000, "image/png")
    with ctx.db.unit_of_work() as uow:
        outcome = Outcome(
            kind=AttemptOutcome.SUCCEEDED, status=200, result_type="image/png", result_file=file_id
        )
        uow.tasks.finish(claimed.id, 1, "d1", outcome)
    r = client.get(f"/api/v1/tasks/{task.id}/result")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-podium-result-status"] == "200"
    assert r.content == b"\x89PNG" * 1000
    hooks.delete_files([file_id])  # gone (the sweep deleted it): a 404, not a cut stream
    gone = client.get(f"/api/v1/tasks/{task.id}/result")
    assert (gone.status_code, gone.json()["field"]) == (404, "file_id")


def test_a_job_path_naming_a_replica_internal_route_is_refused(client: TestClient) -> None:
    """Review 19: a job's lines would reach `/metrics`, `/health/…`, `/podium/…` of the
    replica directly (the dispatcher does not go through the gateway's route check)."""
    f = _upload(client, b"{}\n").json()
    for path in (
        "/metrics",
        "/podium/drain",
        "/health/live",
        "/a/../metrics",
        "//podium/x",
        "/%70odium/x",
        "predict",
    ):
        r = client.post(
            "/api/v1/jobs", json={"endpoint": "echo", "input_file": f["id"], "path": path}
        )
        assert (r.status_code, r.json()["field"]) == (422, "path"), (path, r.text)
    ok = client.post(
        "/api/v1/jobs", json={"endpoint": "echo", "input_file": f["id"], "path": "/metricsx"}
    )
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize("url", ["/api/v1/files", "/v1/files"])
def test_an_upload_waiting_on_a_busy_store_does_not_block_other_requests(
    client: TestClient, ctx: ApiContext, url: str
) -> None:
    """Review 13: the upload's disk writes and its row are done in a worker thread. While
    another writer holds SQLite's write lock, an upload waits for it (its bytes already on
    disk), and meanwhile the API still answers other requests; on the old code the upload
    waited on the event loop, so nothing else was answered until the busy timeout."""
    holding, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with ctx.db.unit_of_work() as uow:
            uow.projects.create("held")  # a write: SQLite's lock is taken until commit
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    assert holding.wait(30)
    answers: list[Any] = []
    uploader = threading.Thread(target=lambda: answers.append(_upload(client, b"{}\n", url)))
    uploader.start()
    try:
        # The upload's bytes are renamed into place just before it asks for the lock.
        while not any(ctx.settings.files_dir.glob("file_*")):
            uploader.join(0.01)
            assert uploader.is_alive(), answers[0].text
        other = client.get("/api/v1/files/file_0")  # served while the upload waits
        assert uploader.is_alive()  # … on the lock, not on the event loop
        assert other.status_code == 404
    finally:
        release.set()
        holder.join(30)
        uploader.join(30)
    assert answers[0].status_code in (200, 201), answers[0].text
