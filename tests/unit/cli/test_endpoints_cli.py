from __future__ import annotations

import json
from pathlib import Path

import pytest

from podium.client import EndpointStatus
from tests.unit.cli.conftest import Cli

DEPLOY = ("deploy", "iris", "--model", "iris", "--framework", "sklearn")


def sent_creates(cli: Cli) -> list[str]:
    return [r for r in cli.api.requests if r.startswith("POST /api/v1/endpoints")]


def test_deploy_with_options(cli: Cli, pushed: str) -> None:
    result = cli(
        *DEPLOY,
        "--task", "tabular-classification",
        "--instance-type", "cpu-medium",
        "--min-replicas", "2",
        "--max-replicas", "4",
        "--max-concurrency", "16",
        "--env", "LOG_LEVEL=debug",
        "-e", "EMPTY=",
        "--label", "team=ml",
        "--trust-pickle",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "endpoint iris created: revision 1, status pending"
    assert "/endpoints/iris/" in result.stdout
    spec = cli.api.endpoints["iris"].public.spec
    assert spec.task == "tabular-classification"
    assert spec.instance_type == "cpu-medium"
    assert (spec.scaling.min_replicas, spec.scaling.max_replicas) == (2, 4)
    assert spec.max_concurrency == 16
    assert spec.env == {"LOG_LEVEL": "debug", "EMPTY": ""}
    assert spec.labels == {"team": "ml"}
    assert spec.trust_pickle is True


def test_deploy_wait_until_running(cli: Cli, pushed: str) -> None:
    result = cli(*DEPLOY, "--wait")
    assert result.exit_code == 0, result.output
    assert "endpoint iris is running: 1/1 replicas ready at " in result.stdout


def test_deploy_wait_failed_exits_1_with_reason(cli: Cli, pushed: str, model_dir: Path) -> None:
    assert cli("models", "push", str(model_dir), "--name", "broken").exit_code == 0
    result = cli("deploy", "bad", "-m", "broken", "--framework", "sklearn", "--wait")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "error: endpoint bad failed at revision 1: model failed to load: bad pickle\n"
    )


def test_deploy_from_file(cli: Cli, pushed: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: from-file\nmodel: iris:1\nframework: sklearn\n"
        "scaling: {min_replicas: 1, max_replicas: 3}\nenv: {A: '1'}\n"
    )
    result = cli("deploy", "-f", str(spec), "--env", "B=2", "--max-replicas", "5")
    assert result.exit_code == 0, result.output
    ep = cli.api.endpoints["from-file"].public
    assert ep.spec.env == {"A": "1", "B": "2"}
    assert (ep.spec.scaling.min_replicas, ep.spec.scaling.max_replicas) == (1, 5)
    result = cli("deploy", "renamed", "-f", str(spec), "--wait")
    assert result.exit_code == 0, result.output
    assert "endpoint renamed is running" in result.stdout


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "scaling: {min_replicas: 3, max_replicas: 1}",
            "error: scaling: min_replicas (3) must not exceed max_replicas (1) (in {file})",
        ),
        ("colour: red", "error: colour: unknown field (in {file})"),
        (
            "max_concurrency: 0",
            "error: max_concurrency: Input should be greater than or equal to 1",
        ),
    ],
)
def test_deploy_file_with_invalid_field_sends_nothing(
    cli: Cli, tmp_path: Path, yaml_text: str, expected: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: iris\nmodel: iris\nframework: sklearn\n{yaml_text}\n")
    result = cli("deploy", "-f", str(spec))
    assert result.exit_code == 1
    assert result.stderr.startswith(expected.format(file=spec))
    assert result.stderr.count("\n") == 1
    assert cli.api.requests == []


def test_deploy_file_not_yaml_or_not_mapping(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    result = cli("deploy", "-f", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: file: {bad} is not valid YAML")
    bad.write_text("- a list\n")
    assert (
        cli("deploy", "-f", str(bad)).stderr
        == f"error: file: {bad} must hold a mapping of spec fields\n"
    )
    assert cli.api.requests == []


def test_deploy_usage_errors_exit_2(cli: Cli) -> None:
    result = cli("deploy", "iris")
    assert result.exit_code == 2
    assert "missing --model" in result.stderr
    result = cli(*DEPLOY, "--env", "NO_EQUALS")
    assert result.exit_code == 2
    assert "'NO_EQUALS' is not KEY=VALUE" in result.stderr
    result = cli(*DEPLOY, "--min-replicas", "-1")
    assert result.exit_code == 2
    assert cli.api.requests == []


def test_deploy_local_validation_of_options(cli: Cli) -> None:
    result = cli("deploy", "Bad_Name", "--model", "iris", "--framework", "sklearn")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: name: 'Bad_Name' is not a valid name")
    assert cli.api.requests == []


def test_deploy_server_error(cli: Cli, pushed: str) -> None:
    result = cli(*DEPLOY, "--instance-type", "tpu-huge")
    assert result.exit_code == 1
    assert result.stderr == "error: instance_type: unknown instance type 'tpu-huge'\n"


def test_ls_table_and_filters(cli: Cli, deployed: str) -> None:
    result = cli("ls")
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "MODEL", "STATUS", "READY", "URL"]
    assert row.split()[:4] == ["iris", "iris:1", "running", "1/1"]
    assert row.split()[4].endswith("/endpoints/iris/")
    assert "iris" in cli("ls", "--status", "running").stdout
    assert cli("ls", "--status", "paused").stdout == "no endpoints match\n"
    assert cli("ls", "--label", "team=none").stdout == "no endpoints match\n"
    data = json.loads(cli("ls", "--json").stdout)
    assert [(e["name"], e["status"]) for e in data] == [("iris", "running")]


def test_ls_empty(cli: Cli) -> None:
    assert cli("ls").stdout == "no endpoints yet\n"


def test_describe(cli: Cli, deployed: str) -> None:
    result = cli("describe", "iris")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in ("status", "running", "iris:1 (sklearn)", "revision", "Spec", "framework:"):
        assert expected in out
    assert "iris-r1-000000" in out and "ready" in out  # replicas table
    assert "status initializing" in out  # events
    data = json.loads(cli("describe", "iris", "--json").stdout)
    assert data["name"] == "iris"
    assert data["events"][0]["message"] == "created"


def test_describe_shows_the_failure_reason(cli: Cli, pushed: str, model_dir: Path) -> None:
    cli("models", "push", str(model_dir), "--name", "broken")
    cli("deploy", "bad", "-m", "broken", "--framework", "sklearn")
    for _ in range(2):
        cli("describe", "bad")
    out = cli("describe", "bad").stdout
    assert "failed (model failed to load: bad pickle)" in out


def test_pause_resume_wake_scale_rm(cli: Cli, deployed: str) -> None:
    assert cli("pause", "iris").stdout == "endpoint iris: paused\n"
    assert cli("resume", "iris").stdout == "endpoint iris: pending\n"
    result = cli("scale", "iris", "--min", "0", "--max", "2")
    assert result.stdout == "endpoint iris scales 0..2: status scaled_to_zero\n"
    assert cli("wake", "iris").stdout == "endpoint iris: initializing (0/1 replicas ready)\n"
    result = cli("scale", "iris", "--max", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("endpoint iris scales 0..5")
    assert cli("rm", "iris").stdout == "endpoint iris is being deleted\n"
    assert "iris" not in cli.api.endpoints


def test_scale_error_line(cli: Cli, deployed: str) -> None:
    result = cli("scale", "iris", "--min", "3", "--max", "1")
    assert result.exit_code == 1
    assert result.stderr == "error: scaling: min_replicas (3) must not exceed max_replicas (1)\n"
    assert result.stdout == ""
    assert cli("scale", "iris").exit_code == 2


def test_update(cli: Cli, deployed: str) -> None:
    cli("update", "iris", "--label", "team=ml")
    result = cli("update", "iris", "--env", "A=1", "--min-replicas", "0", "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "endpoint iris updated: revision 2, status updating"
    spec = cli.api.endpoints["iris"].public.spec
    assert (spec.env, spec.labels) == ({"A": "1"}, {"team": "ml"})
    assert (spec.scaling.min_replicas, spec.scaling.max_replicas) == (0, 1)
    assert cli.api.endpoints["iris"].public.status in set(EndpointStatus)
    assert cli("update", "iris").exit_code == 2


def test_unknown_endpoint(cli: Cli) -> None:
    for command in ("describe", "pause", "resume", "wake", "rm"):
        result = cli(command, "ghost")
        assert result.exit_code == 1, command
        assert result.stderr == "error: endpoint 'ghost' not found\n"
