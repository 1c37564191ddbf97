from __future__ import annotations

import json
from pathlib import Path

from tests.support.inproc import InProcessPodium
from tests.unit.cli.conftest import Cli


def stored_folder(api: InProcessPodium, name: str, version: int) -> Path:
    with api.podium.db.unit_of_work(read_only=True) as uow:
        return Path(uow.models.get(name, version).path)


def test_push_folder(cli: Cli, model_dir: Path) -> None:
    result = cli("models", "push", str(model_dir), "--name", "iris", "--framework", "sklearn")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("pushed iris:1: ")
    assert cli.api.requests == [
        "POST /api/v1/models/iris/versions?filename=iris.tar.gz&framework=sklearn"
    ]
    stored = stored_folder(cli.api, "iris", 1)
    assert (stored / "sub" / "deeper" / "vocab.txt").read_text() == "a\nb\n"


def test_push_file(cli: Cli, tmp_path: Path) -> None:
    model = tmp_path / "digits.onnx"
    model.write_bytes(b"onnx")
    result = cli("models", "push", str(model), "-n", "digits")
    assert result.exit_code == 0, result.output
    assert "pushed digits:1" in result.stdout
    assert (stored_folder(cli.api, "digits", 1) / "digits.onnx").read_bytes() == b"onnx"


def test_push_missing_path(cli: Cli, tmp_path: Path) -> None:
    result = cli("models", "push", str(tmp_path / "nope"), "--name", "iris")
    assert result.exit_code == 1
    assert result.stderr == f"error: path: {tmp_path / 'nope'} does not exist\n"


def test_ls(cli: Cli, pushed: str) -> None:
    result = cli("models", "ls")
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "LATEST", "VERSIONS", "FRAMEWORK", "SIZE"]
    assert row.split()[:4] == ["iris", "1", "1", "sklearn"]
    data = json.loads(cli("models", "ls", "--json").stdout)
    assert [m["name"] for m in data] == ["iris"]


def test_ls_empty(cli: Cli) -> None:
    result = cli("models", "ls")
    assert result.exit_code == 0
    assert "no models yet" in result.stdout


def test_show_model_and_version(cli: Cli, pushed: str) -> None:
    result = cli("models", "show", "iris")
    assert result.exit_code == 0, result.output
    assert "model iris (latest 1)" in result.stdout
    assert "iris:1" in result.stdout
    result = cli("models", "show", "iris:1")
    assert result.exit_code == 0, result.output
    assert "upload:iris.tar.gz" in result.stdout
    assert json.loads(cli("models", "show", "iris:1", "--json").stdout)["ref"] == "iris:1"


def test_show_unknown(cli: Cli, pushed: str) -> None:
    result = cli("models", "show", "ghost:3")
    assert result.exit_code == 1
    assert result.stderr == "error: model 'ghost' not found\n"
    result = cli("models", "show", "iris:3")
    assert result.exit_code == 1
    assert result.stderr == "error: model 'iris' has no version 3\n"


def test_rm(cli: Cli, pushed: str) -> None:
    result = cli("models", "rm", "iris:1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "deleted version iris:1\n"
    assert "DELETE /api/v1/models/iris/versions/1" in cli.api.requests


def test_rm_whole_model_and_bad_ref(cli: Cli, pushed: str) -> None:
    assert cli("models", "rm", "iris").stdout == "deleted model iris\n"
    result = cli("models", "rm", "Not A Ref")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ref: 'Not A Ref' is not a model reference")
