from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium.client import PodiumClient
from tests.unit.cli.conftest import Cli, spec_of

DEPLOY = ("deploy", "iris", "--model", "iris", "--framework", "sklearn")
CREATED = "POST /api/v1/endpoints"  # once it is answered, the controller may act


def bounds(spec: dict[str, Any]) -> tuple[int, int]:
    return spec["scaling"]["min_replicas"], spec["scaling"]["max_replicas"]


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
    assert result.stdout.splitlines() == [
        "endpoint iris created: revision 1, status pending",
        f"url: {cli.api.url}/endpoints/iris",
    ]
    spec = spec_of(cli.api, "iris")
    assert spec["task"] == "tabular-classification"
    assert spec["instance_type"] == "cpu-medium"
    assert bounds(spec) == (2, 4)
    assert spec["max_concurrency"] == 16
    assert spec["env"] == {"LOG_LEVEL": "debug", "EMPTY": ""}
    assert spec["labels"] == {"team": "ml"}
    assert spec["trust_pickle"] is True


def test_deploy_wait_until_running(cli: Cli, pushed: str) -> None:
    with cli.api.on_answer(CREATED, lambda: cli.api.ready("iris")):
        result = cli(*DEPLOY, "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"endpoint iris is running: 1/1 replicas ready at {cli.api.url}/endpoints/iris"
    )


def test_deploy_wait_failed_exits_1_with_reason(cli: Cli, pushed: str, model_dir: Path) -> None:
    assert cli("models", "push", str(model_dir), "--name", "broken").exit_code == 0
    reason = "model failed to load: bad pickle"
    with cli.api.on_answer(CREATED, lambda: cli.api.fail("bad", reason)):
        result = cli("deploy", "bad", "-m", "broken", "--framework", "sklearn", "--wait")
    assert result.exit_code == 1
    assert result.stderr == f"error: endpoint bad failed at revision 1: {reason}\n"


def test_deploy_from_file(cli: Cli, pushed: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: from-file\nmodel: iris:1\nframework: sklearn\n"
        "scaling: {min_replicas: 1, max_replicas: 3}\nenv: {A: '1'}\n"
    )
    result = cli("deploy", "-f", str(spec), "--env", "B=2", "--max-replicas", "5")
    assert result.exit_code == 0, result.output
    stored = spec_of(cli.api, "from-file")
    assert stored["env"] == {"A": "1", "B": "2"}
    assert bounds(stored) == (1, 5)
    with cli.api.on_answer(CREATED, lambda: cli.api.ready("renamed")):
        result = cli("deploy", "renamed", "-f", str(spec), "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert "endpoint renamed is running" in result.stdout


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "scaling: {min_replicas: 3, max_replicas: 1}",
            "error: scaling.max_replicas: min_replicas (3) must not exceed max_replicas (1) "
            "(in {file})",
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
    result = cli("deploy")
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


def test_deploy_server_errors(cli: Cli, pushed: str) -> None:
    result = cli(*DEPLOY, "--instance-type", "tpu-huge")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: instance_type: unknown instance type 'tpu-huge'")
    result = cli("deploy", "lily", "--model", "lily")
    assert result.exit_code == 1
    assert result.stderr == "error: model 'lily' not found\n"
    assert cli("ls").stdout == "no endpoints yet\n"


@pytest.fixture
def garden(cli: Cli, pushed: str) -> None:
    """iris (running; team=ml, tier=gold), daisy (pending; team=ml), rose (paused; team=web)."""
    with PodiumClient(cli.api.url) as client:
        client.deploy({"name": "iris", "model": "iris", "labels": {"team": "ml", "tier": "gold"}})
        client.deploy({"name": "daisy", "model": "iris", "labels": {"team": "ml"}})
        client.deploy({"name": "rose", "model": "iris", "labels": {"team": "web"}})
        cli.api.ready("iris")
        client.pause("rose")
    cli.api.requests.clear()


def names_in(stdout: str) -> list[str]:
    """The NAME column of a table (after its header)."""
    return [line.split()[0] for line in stdout.splitlines()[1:]]


def test_ls_table(cli: Cli, garden: None) -> None:
    result = cli("ls")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        *("NAME", "MODEL", "STATUS", "READY"),
        *("REQ/MIN", "LATENCY", "ERR%", "UPTIME", "URL"),  # tests/unit/cli/test_stats_cli.py
    ]
    assert [row.split()[:7] for row in rows] == [
        ["daisy", "iris:1", "pending", "0/1", "0.0", "-", "-"],
        ["iris", "iris:1", "running", "1/1", "0.0", "-", "-"],
        ["rose", "iris:1", "paused", "0/1", "0.0", "-", "-"],
    ]
    assert rows[1].split()[8] == f"{cli.api.url}/endpoints/iris"


LS_FILTERS = [  # options, the query the server gets, the endpoints it lists
    (("--status", "running"), "status=running", ["iris"]),
    (("-s", "paused"), "status=paused", ["rose"]),
    (("--label", "team=ml"), "label=team%3Dml", ["daisy", "iris"]),
    (("-l", "team=ml", "-l", "tier=gold"), "label=team%3Dml&label=tier%3Dgold", ["iris"]),
    (("--name", "ris"), "name=ris", ["iris"]),
    (("--name", "s", "--label", "team=ml"), "label=team%3Dml&name=s", ["daisy", "iris"]),
    (
        ("--name", "s", "-l", "team=ml", "-s", "pending"),
        "status=pending&label=team%3Dml&name=s",
        ["daisy"],
    ),
]


def test_ls_filters_are_applied_by_the_server(cli: Cli, garden: None) -> None:
    for filters, query, expected in LS_FILTERS:
        cli.api.requests.clear()
        result = cli("ls", *filters)
        assert result.exit_code == 0, result.output
        assert names_in(result.stdout) == expected, filters
        assert cli.api.requests == [f"GET /api/v1/endpoints?{query}"]
        data = json.loads(cli("ls", *filters, "--json").stdout)
        assert [e["name"] for e in data] == expected, filters


def test_ls_no_match_and_empty(cli: Cli, garden: None) -> None:
    assert cli("ls", "--status", "failed").stdout == "no endpoints match\n"
    assert cli("ls", "--label", "team=none").stdout == "no endpoints match\n"
    assert cli("ls", "--name", "tulip").stdout == "no endpoints match\n"
    for name in ("iris", "daisy", "rose"):
        cli("rm", name)
        cli.api.gone(name)
    assert cli("ls").stdout == "no endpoints yet\n"


def test_describe(cli: Cli, deployed: str) -> None:
    result = cli("describe", "iris")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    out = result.stdout
    assert "iris:1 (sklearn)" in out
    assert any(line.split()[:2] == ["status", "running"] for line in lines), out
    assert any(line.split()[:2] == ["revision", "1"] for line in lines), out
    assert "Spec" in lines and "Replicas" in lines and "Events" in lines
    assert "framework: sklearn" in out  # the spec as YAML
    [replica] = [line for line in lines if line.startswith("iris-r1-000000")]
    assert "ready" in replica.split()
    assert "status pending → running: replicas ready" in out  # events
    data = json.loads(cli("describe", "iris", "--json").stdout)
    assert (data["name"], data["status"], data["ready_replicas"]) == ("iris", "running", 1)
    assert [e["kind"] for e in data["events"]] == ["spec", "replica_ready", "status"]
    assert cli.api.requests[:2] == [
        "GET /api/v1/endpoints/iris",
        "GET /api/v1/endpoints/iris/events?after=0&limit=500",
    ]


def test_describe_shows_the_failure_reason(cli: Cli, pushed: str, model_dir: Path) -> None:
    cli("models", "push", str(model_dir), "--name", "broken")
    cli("deploy", "bad", "-m", "broken", "--framework", "sklearn")
    cli.api.fail("bad", "model failed to load: bad pickle")
    out = cli("describe", "bad").stdout
    assert "failed (model failed to load: bad pickle)" in out
    assert "Replicas\nnone" in out


def test_pause_resume_wake_scale_rm(cli: Cli, deployed: str) -> None:
    assert cli("pause", "iris").stdout == "endpoint iris: paused\n"
    assert cli("wake", "iris").stderr == (
        "error: status: endpoint 'iris' is paused and does not wake: resume it first\n"
    )
    assert cli("resume", "iris").stdout == "endpoint iris: pending\n"
    result = cli("scale", "iris", "--min", "0", "--max", "2")
    assert result.stdout == "endpoint iris scales 0..2: status pending\n"
    assert bounds(spec_of(cli.api, "iris")) == (0, 2)
    assert cli("wake", "iris").stdout == "endpoint iris: initializing (1/1 replicas ready)\n"
    cli.api.requests.clear()
    result = cli("scale", "iris", "--max", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == "endpoint iris scales 0..5: status initializing\n"
    assert cli.api.requests == [  # the missing bound is the current one
        "GET /api/v1/endpoints/iris",
        "POST /api/v1/endpoints/iris/scale",
    ]
    assert bounds(spec_of(cli.api, "iris")) == (0, 5)
    assert cli("events", "iris").stdout.count("scale bounds set to min 0, max 5 by user") == 1
    assert cli("rm", "iris").stdout == "endpoint iris is being deleted\n"
    assert json.loads(cli("ls", "--json").stdout)[0]["status"] == "deleting"


def test_scale_error_line(cli: Cli, deployed: str) -> None:
    result = cli("scale", "iris", "--min", "3", "--max", "1")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: scaling.max_replicas: min_replicas (3) must not exceed max_replicas (1)\n"
    )
    assert result.stdout == ""
    assert cli("scale", "iris").exit_code == 2
    assert cli.api.requests == []
    result = cli("scale", "ghost", "--min", "1", "--max", "2")
    assert (result.exit_code, result.stderr) == (1, "error: name: endpoint 'ghost' not found\n")


def test_update(cli: Cli, deployed: str) -> None:
    assert cli("update", "iris", "--label", "team=ml").exit_code == 0

    def rolled_out() -> None:  # the old replica drained and stopped, the new one ready
        with cli.api.podium.db.unit_of_work() as uow:
            uow.replicas.delete("iris-r1-000000")
        cli.api.ready("iris")

    with cli.api.on_answer("PATCH /api/v1/endpoints/iris", rolled_out):
        result = cli("update", "iris", "--env", "A=1", "--min-replicas", "0", "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "endpoint iris updated: revision 2, status updating",
        f"endpoint iris is running: revision 2, 1/1 replicas ready at {cli.api.url}/endpoints/iris",
    ]
    spec = spec_of(cli.api, "iris")
    assert (spec["env"], spec["labels"]) == ({"A": "1"}, {"team": "ml"})
    assert bounds(spec) == (0, 1)
    assert cli("update", "iris").exit_code == 2


def test_unknown_endpoint(cli: Cli) -> None:
    for command in ("describe", "pause", "resume", "wake", "rm"):
        result = cli(command, "ghost")
        assert result.exit_code == 1, command
        # The API names the field (the fake did not): the path's `name`.
        assert result.stderr == "error: name: endpoint 'ghost' not found\n"


def test_deploy_without_a_name_gets_one_derived_from_the_model(cli: Cli, pushed: str) -> None:
    result = cli("deploy", "--model", "iris", "--framework", "sklearn")
    assert result.exit_code == 0, result.output
    first = result.stdout.split()[1]  # "endpoint iris-xxxxx created: …"
    assert first.startswith("iris-") and first != "iris"
    second = cli("deploy", "--model", "iris", "--framework", "sklearn").stdout.split()[1]
    assert second.startswith("iris-") and second != first


def test_scale_zero(cli: Cli, deployed: str) -> None:
    result = cli("scale", "iris", "--zero")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("endpoint iris scaled to zero: status ")
    assert result.stdout.endswith("(the next request wakes it)\n")
    assert cli.api.requests[-1] == "POST /api/v1/endpoints/iris/scale-to-zero"
    assert "scaled 1→0: scaled to zero by user" in cli("events", "iris").stdout
    cli.api.requests.clear()
    for extra in (("--min", "1"), ("--max", "2")):
        result = cli("scale", "iris", "--zero", *extra)
        assert (result.exit_code, "--zero excludes --min and --max" in result.stderr) == (2, True)
    assert cli.api.requests == []
    cli("pause", "iris")
    result = cli("scale", "iris", "--zero")
    assert result.exit_code == 1
    assert "paused" in result.stderr


def test_env_flags_survive_the_env_option(cli: Cli, pushed: str, tmp_path: Path) -> None:
    """`--env` adds plain entries; entries with flags (here `disabled`) keep their flags,
    at deploy (merged into the file's) and at update (merged into the current ones)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: flags\nmodel: iris:1\nframework: sklearn\n"
        "env: {DUMP: {value: '1', disabled: true}}\n"
    )
    assert cli("deploy", "-f", str(spec), "--env", "A=1").exit_code == 0
    assert cli("update", "flags", "--env", "B=2").exit_code == 0
    dump = {"value": "1", "required": False, "disabled": True}
    assert spec_of(cli.api, "flags")["env"] == {"DUMP": dump, "A": "1", "B": "2"}
