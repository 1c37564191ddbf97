from __future__ import annotations

import json
from pathlib import Path

from podium.client import PodiumClient
from tests.unit.cli.conftest import Cli

RID = "iris-r1-000000"  # the replica of the `deployed` endpoint


def test_invoke_inline_json(cli: Cli, deployed: str) -> None:
    result = cli("invoke", "iris", "--json", '{"inputs": [[5.1, 3.5, 1.4, 0.2]]}')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"outputs": [[5.1, 3.5, 1.4, 0.2]], "path": "/"}
    assert cli.api.echo.received == [("/", {"inputs": [[5.1, 3.5, 1.4, 0.2]]})]
    assert cli.api.requests == ["POST /endpoints/iris/"]  # through the gateway


def test_invoke_json_from_file_and_stdin(cli: Cli, deployed: str, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"inputs": "hello", "parameters": {"top_k": 2}}')
    result = cli("invoke", "iris", "--json", f"@{body}", "--path", "/v2/infer")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == "hello"
    assert cli.api.echo.received[-1] == (
        "/v2/infer",
        {"inputs": "hello", "parameters": {"top_k": 2}},
    )
    result = cli("invoke", "iris", "-d", "@-", input='{"inputs": 7}')
    assert json.loads(result.stdout)["outputs"] == 7


def test_invoke_bad_json_is_a_usage_error(cli: Cli, deployed: str, tmp_path: Path) -> None:
    result = cli("invoke", "iris", "--json", "{not json")
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr
    result = cli("invoke", "iris", "--json", f"@{tmp_path / 'missing.json'}")
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
    assert cli.api.echo.received == []


def test_invoke_errors(cli: Cli, deployed: str) -> None:
    result = cli("invoke", "iris", "--json", '{"inputs": "boom"}')
    assert result.exit_code == 1
    assert result.stderr == "error: the model raised ValueError: boom\n"
    result = cli("invoke", "ghost", "--json", '{"inputs": 1}')
    assert result.stderr == "error: endpoint 'ghost' not found\n"
    cli("pause", "iris")
    cli.api.publish()  # the controller routes the pause
    result = cli("invoke", "iris", "--json", '{"inputs": 1}')
    assert result.exit_code == 1
    # A paused endpoint is not worth retrying: no Retry-After (the fake sent one).
    assert (
        result.stderr == "error: endpoint 'iris' is paused; resume it with `podium resume iris`\n"
    )


def test_logs(cli: Cli, deployed: str) -> None:
    result = cli("logs", "iris", "--tail", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{RID} | log line 4 of {RID}",
        f"{RID} | log line 5 of {RID}",
    ]
    assert cli.api.requests == ["GET /api/v1/endpoints/iris/logs?tail=2&follow=false"]
    result = cli("logs", "iris", "--replica", RID, "-n", "1")
    assert result.stdout == f"{RID} | log line 5 of {RID}\n"
    result = cli("logs", "iris", "--replica", "iris-r1-abcdef")
    assert result.exit_code == 1
    assert result.stderr == "error: replica: the endpoint has no replica 'iris-r1-abcdef'\n"


def test_logs_follow(cli: Cli, pushed: str) -> None:
    with PodiumClient(cli.api.url) as client:
        spec = {"name": "iris", "model": "iris", "scaling": {"min_replicas": 2, "max_replicas": 2}}
        client.deploy(spec)
    first, second = cli.api.ready("iris")
    # Once the follow has begun, the endpoint is deleted: the stream, and the command, end.
    with cli.api.on_answer("GET /api/v1/endpoints/iris/logs", lambda: cli.api.gone("iris")):
        result = cli("logs", "iris", "-f", "--tail", "2")
    assert result.exit_code == 0, result.output
    assert cli.api.requests[-1] == "GET /api/v1/endpoints/iris/logs?tail=2&follow=true"
    # Each replica's last 2 lines, as the server streams them: `[replica] line` (plain
    # `logs` prints `replica | line`; the fake streamed that format too).
    assert result.stdout.splitlines() == [
        f"[{first}] log line 4 of {first}",
        f"[{first}] log line 5 of {first}",
        f"[{second}] log line 4 of {second}",
        f"[{second}] log line 5 of {second}",
    ]
    assert cli("logs", "ghost", "-f").stderr == "error: name: endpoint 'ghost' not found\n"


def test_events(cli: Cli, deployed: str) -> None:
    result = cli("events", "iris")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "AT", "KIND", "MESSAGE"]
    assert lines[1].split(maxsplit=4)[3:] == [  # ID, date, time, KIND, MESSAGE
        "spec",
        "created endpoint iris (revision 1, model iris:1)",
    ]
    assert "status pending → running: replicas ready" in result.stdout
    data = json.loads(cli("events", "iris", "--after", "1", "--json").stdout)
    assert [(e["id"], e["kind"]) for e in data] == [(2, "replica_ready"), (3, "status")]
