"""`podium jobs …` in-process against the real server app; the test runs the job runner
(`run_once`) and answers the tasks by hand (no dispatcher, no replica)."""

from __future__ import annotations

import json
from pathlib import Path

from podium.core.phases import EndpointStatus
from podium.core.spec import EndpointSpec
from podium.core.tasks import AttemptOutcome
from podium.server.jobs import JobRunner
from podium.store.files import FileStore
from podium.store.task_records import Outcome
from tests.support.inproc import InProcessPodium
from tests.unit.cli.conftest import Cli


def _endpoint(api: InProcessPodium) -> None:
    spec = EndpointSpec.model_validate({"name": "echo", "model": "echo:1", "framework": "python"})
    with api.podium.db.unit_of_work() as uow:
        uow.endpoints.create(
            spec, model_ref="echo:1", status=EndpointStatus.RUNNING, desired_replicas=1
        )


def _run(api: InProcessPodium, rounds: int = 5) -> None:
    db = api.podium.db
    runner = JobRunner(db, FileStore(api.settings.files_dir), api.settings.tasks)
    for _ in range(rounds):
        runner.run_once()
        with db.unit_of_work() as uow:
            for c in uow.tasks.claim("t", {"echo": 100}):
                outcome = Outcome(kind=AttemptOutcome.SUCCEEDED, status=200, result=c.body)
                uow.tasks.finish(c.id, c.attempt, "t", outcome)


def test_jobs_create_ls_get_watch_output_cancel(
    cli: Cli, api: InProcessPodium, tmp_path: Path
) -> None:
    _endpoint(api)
    source = tmp_path / "in.jsonl"
    source.write_text('{"inputs": 1}\nnope\n')
    made = cli("jobs", "create", "echo", "--input", str(source), "--path", "/", "-c", "3")
    assert made.exit_code == 0, made.output
    job_id = made.output.split()[1]
    assert made.output.startswith(f"job {job_id} created (in.jsonl → echo/, concurrency 3)")
    _run(api)
    listed = cli("jobs", "ls", "echo")
    assert listed.exit_code == 0 and job_id in listed.output and "2/2" in listed.output
    got = json.loads(cli("jobs", "get", job_id).output)
    assert (got["status"], got["lines_succeeded"], got["lines_failed"]) == ("completed", 1, 1)
    watched = cli("jobs", "watch", job_id)
    assert watched.exit_code == 0
    assert f"job {job_id} completed: 1 succeeded, 1 failed of 2" in watched.output
    out = tmp_path / "out.jsonl"
    assert cli("jobs", "output", job_id, "-o", str(out)).exit_code == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["line"], r["status"]) for r in rows] == [(0, "succeeded"), (1, "failed")]
    assert rows[0]["result"] == {"inputs": 1}
    refused = cli("jobs", "cancel", job_id)
    assert refused.exit_code == 1 and "cannot go from completed to cancelling" in refused.output


def test_jobs_cancel_and_an_unknown_endpoint(
    cli: Cli, api: InProcessPodium, tmp_path: Path
) -> None:
    _endpoint(api)
    source = tmp_path / "in.jsonl"
    source.write_text('{"inputs": 1}\n' * 5)
    job_id = cli("jobs", "create", "echo", "-i", str(source), "-c", "1").output.split()[1]
    cancelled = cli("jobs", "cancel", job_id)
    assert cancelled.exit_code == 0 and f"job {job_id} cancelling" in cancelled.output
    _run(api, rounds=1)
    assert json.loads(cli("jobs", "get", job_id).output)["status"] == "cancelled"
    assert cli("jobs", "ls").output.count(job_id) == 1
    missing = cli("jobs", "create", "nope", "-i", str(source))
    assert missing.exit_code == 1 and "endpoint 'nope' not found" in missing.output
