from __future__ import annotations

import json
from pathlib import Path

from tests.unit.cli.conftest import Cli


def test_invoke_inline_json(cli: Cli, deployed: str) -> None:
    result = cli("invoke", "iris", "--json", '{"inputs": [[5.1, 3.5, 1.4, 0.2]]}')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "outputs": [[5.1, 3.5, 1.4, 0.2]],
        "path": "/",
        "endpoint": "iris",
    }
    assert cli.api.invocations == [("iris", "/", {"inputs": [[5.1, 3.5, 1.4, 0.2]]})]


def test_invoke_json_from_file_and_stdin(cli: Cli, deployed: str, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"inputs": "hello", "parameters": {"top_k": 2}}')
    result = cli("invoke", "iris", "--json", f"@{body}", "--path", "/v2/infer")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == "hello"
    assert cli.api.invocations[-1] == (
        "iris",
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
    assert cli.api.invocations == []


def test_invoke_errors(cli: Cli, deployed: str) -> None:
    result = cli("invoke", "iris", "--json", '{"inputs": "boom"}')
    assert result.exit_code == 1
    assert result.stderr == "error: the model raised ValueError: boom\n"
    cli("pause", "iris")
    result = cli("invoke", "iris", "--json", '{"inputs": 1}')
    assert result.exit_code == 1
    assert result.stderr == "error: endpoint iris is paused (retry in 2s)\n"


def test_logs(cli: Cli, deployed: str) -> None:
    result = cli("logs", "iris", "--tail", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "iris-r1-000000 | [4] log line 4 of iris",
        "iris-r1-000000 | [5] log line 5 of iris",
    ]
    assert "GET /api/v1/endpoints/iris/logs?tail=2&follow=false" in cli.api.requests
    result = cli("logs", "iris", "--replica", "iris-r1-abcdef", "-n", "1")
    assert result.stdout == "iris-r1-abcdef | [5] log line 5 of iris\n"


def test_logs_follow(cli: Cli, deployed: str) -> None:
    result = cli("logs", "iris", "-f", "--tail", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"iris-r1-000000 | [{i}] log line {i} of iris" for i in (3, 4, 5)
    ]
    assert cli("logs", "ghost", "-f").stderr == "error: endpoint 'ghost' not found\n"


def test_events(cli: Cli, deployed: str) -> None:
    result = cli("events", "iris")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "AT", "KIND", "MESSAGE"]
    assert lines[1].split()[-2:] == ["spec", "created"]
    assert "status running" in result.stdout
    data = json.loads(cli("events", "iris", "--after", "1", "--json").stdout)
    assert [e["id"] for e in data] == [2, 3]
