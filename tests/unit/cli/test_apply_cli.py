"""`podium plan` / `apply` / `export` against the real API (in-process server)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from podium.artifacts.hashing import sha256_tree
from podium.client import PodiumClient
from podium.client._apply import content_digest
from podium.core.schemas import ModelVersionPushed
from tests.unit.cli.conftest import Cli, spec_of

MANIFEST = """\
kind: model
name: iris
path: {model}
framework: sklearn
---
kind: secret
name: api-key
from_env: APPLY_TEST_KEY
---
name: iris
model: iris
env_from_secrets: {{KEY: api-key}}
scaling: {{max_replicas: 2}}
"""


def _write(tmp_path: Path, model_dir: Path, text: str = MANIFEST) -> Path:
    path = tmp_path / "podium.yaml"
    path.write_text(text.format(model=model_dir.relative_to(tmp_path)))
    return path


def test_plan_apply_twice_and_export_round_trip(
    cli: Cli, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPLY_TEST_KEY", "very-secret-value")
    manifest = _write(tmp_path, model_dir)

    plan = cli("plan", "-f", str(manifest))
    assert plan.exit_code == 2, plan.output  # changes
    lines = plan.stdout.splitlines()
    assert "+ create model iris" in lines
    assert "+ create secret api-key" in lines
    assert "+ create endpoint iris" in lines
    assert "    scaling.max_replicas: (none) → 2" in lines
    assert "    value: (none) → (sensitive)" in lines
    assert "very-secret-value" not in plan.output
    assert lines[-1] == "Plan: 3 to create, 0 to update, 0 to delete."

    refused = cli("apply", "-f", str(manifest))  # not a TTY, no --yes
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: --yes: not applying without confirmation")

    done = cli("apply", "-f", str(tmp_path), "--yes")  # a folder of *.yaml works too
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == "Applied: 3 created, 0 updated, 0 deleted."
    pushes = [r for r in cli.api.requests if r.startswith("POST /api/v1/models/iris/versions")]
    assert len(pushes) == 1

    again = cli("apply", "-f", str(manifest), "--yes")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0] == "No changes."
    pushes = [r for r in cli.api.requests if r.startswith("POST /api/v1/models/iris/versions")]
    assert len(pushes) == 1  # the same folder is not uploaded again
    assert cli("plan", "-f", str(manifest)).exit_code == 0

    (model_dir / "extra.txt").write_text("changed")  # new content: a new version and revision
    plan = cli("apply", "--dry-run", "-f", str(manifest))
    assert plan.exit_code == 2, plan.output
    assert "~ update model iris (new revision)" in plan.stdout
    assert "~ update endpoint iris (new revision)" in plan.stdout

    exported = cli("export", "iris")
    assert exported.exit_code == 0, exported.output
    doc = yaml.safe_load(exported.stdout)
    assert doc["kind"] == "endpoint" and doc["scaling"] == {"max_replicas": 2}
    out = tmp_path / "exported" / "all.yaml"
    out.parent.mkdir()
    assert cli("export", "--all", "-o", str(out)).exit_code == 0
    assert cli("plan", "-f", str(out)).stdout == "No changes.\n"


def test_errors_name_the_file_and_document(cli: Cli, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("name: ok-one\nmodel: iris\n---\nname: iris\nmodel: iris\nreplicas: 2\n")
    result = cli("plan", "-f", str(manifest))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: documents[1].replicas: unknown field")
    assert f"(in {manifest}, document 2)" in result.stderr
    assert cli("plan", "-f", str(tmp_path / "missing.yaml")).exit_code == 1
    manifest.write_text("kind: secret\nname: tok\nvalue: written-down\n")
    result = cli("plan", "-f", str(manifest))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: documents[0].value: a secret's value is never written")
    assert cli("export").exit_code == 1


def test_the_client_digest_is_the_servers(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.bin").write_bytes(b"\0b")
    assert content_digest(folder) == sha256_tree(folder).sha256
    wrapped = tmp_path / "outer"
    (wrapped / "inner").mkdir(parents=True)
    (wrapped / "inner" / "m.bin").write_bytes(b"x")
    assert content_digest(wrapped) == sha256_tree(wrapped / "inner").sha256
    one = tmp_path / "model.onnx"
    one.write_bytes(b"onnx")
    assert content_digest(one) == sha256_tree(one).sha256
    archive = tmp_path / "m.tar.gz"
    archive.write_bytes(hashlib.sha256(b"").digest())
    assert content_digest(archive) is None


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("plan", "-f", "x.yaml", "--prun"), 1),
        (("plan", "-f"), 1),
        (("apply", "--dry-run", "-f", "x.yaml", "--prun"), 1),
        (("apply", "-f", "x.yaml", "--prun"), 2),
    ],
)
def test_a_usage_error_in_plan_is_not_read_as_changes(
    cli: Cli, args: tuple[str, ...], status: int
) -> None:
    result = cli(*args)
    assert result.exit_code == status, result.output
    assert result.stderr.startswith("error: ")


def test_prune_needs_an_explicit_manager(cli: Cli, tmp_path: Path) -> None:
    manifest = tmp_path / "one.yaml"
    manifest.write_text("name: iris\nmodel: iris\n")
    result = cli("plan", "-f", str(manifest), "--prune")
    assert result.exit_code == 1
    assert "--managed-by NAME" in result.stderr
    assert cli.api.requests == []


def test_a_refused_apply_pushes_no_model(
    cli: Cli, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPLY_TEST_KEY", "v")
    bad = MANIFEST.replace("model: iris\n", "model: iris\nframework: nope\n").replace(
        "env_from_secrets: {{KEY: api-key}}\n", ""
    )
    manifest = _write(tmp_path, model_dir, bad)
    result = cli("apply", "-f", str(manifest), "--yes")
    assert result.exit_code == 1, result.output
    assert "documents[2].framework" in result.stderr
    assert not [r for r in cli.api.requests if r.startswith("POST /api/v1/models/")]


def test_apply_carries_out_the_plan_confirmed_or_none(
    cli: Cli, tmp_path: Path, pushed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "one.yaml"
    manifest.write_text("name: iris\nmodel: iris\nframework: sklearn\n")

    def meanwhile() -> None:  # someone makes the endpoint by hand while the user reads
        with PodiumClient(cli.api.url) as client:
            client.deploy({"name": "iris", "model": "iris", "framework": "sklearn", "timeout_s": 9})

    monkeypatch.setattr("podium.cli.apply.confirm", meanwhile)
    result = cli("apply", "-f", str(manifest))
    assert result.exit_code == 1, result.output
    assert "+ create endpoint iris" in result.stdout
    assert "the plan changed" in result.stderr
    assert spec_of(cli.api, "iris")["timeout_s"] == 9  # the hand-made one, untouched
    monkeypatch.setattr("podium.cli.apply.confirm", lambda: None)
    result = cli("apply", "-f", str(manifest))
    assert result.exit_code == 0, result.output
    assert "~ update endpoint iris" in result.stdout


ONE_MODEL = """\
kind: model
name: iris
path: {model}
framework: sklearn
---
name: iris
model: iris
"""


@pytest.fixture
def applied(cli: Cli, tmp_path: Path, model_dir: Path, pushed: str) -> Path:
    """`iris` applied from ONE_MODEL (model iris:1), then a new file in the model folder:
    the manifest whose next apply pushes iris:2."""
    manifest = _write(tmp_path, model_dir, ONE_MODEL)
    assert cli("apply", "-f", str(manifest), "--yes").exit_code == 0
    (model_dir / "extra.txt").write_text("retrained")
    return manifest


def _pushes(cli: Cli) -> list[str]:
    return [r for r in cli.api.requests if r.startswith("POST /api/v1/models/iris/versions")]


def test_the_model_content_confirmed_is_the_one_pushed(
    cli: Cli, applied: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder changes while the user reads the plan: nothing is pushed (review2 B2)."""
    before = len(_pushes(cli))
    monkeypatch.setattr(
        "podium.cli.apply.confirm", lambda: (model_dir / "extra.txt").write_text("still writing")
    )
    result = cli("apply", "-f", str(applied))
    assert result.exit_code == 1, result.output
    assert "~ update model iris (new revision)" in result.stdout
    assert "the plan changed" in result.stderr
    assert len(_pushes(cli)) == before
    assert spec_of(cli.api, "iris")["model"] == "iris"
    with PodiumClient(cli.api.url) as client:
        assert client.model("iris").latest == 1


def test_a_change_during_the_push_stops_the_apply(
    cli: Cli, applied: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What changes on the server, or in the folder, while the model is pushed: the pushed
    version is left, no endpoint moves to it (review2 B2)."""
    monkeypatch.setattr("podium.cli.apply.confirm", lambda: None)
    push = PodiumClient.push_model

    def meanwhile(self: PodiumClient, *args: Any, **kwargs: Any) -> ModelVersionPushed:
        done = push(self, *args, **kwargs)
        self.update("iris", {"timeout_s": 9})  # someone changes the endpoint by hand
        return done

    monkeypatch.setattr(PodiumClient, "push_model", meanwhile)
    result = cli("apply", "-f", str(applied))
    assert result.exit_code == 1, result.output
    assert "the plan changed" in result.stderr
    with PodiumClient(cli.api.url) as client:
        assert client.endpoint("iris").model_ref == "iris:1"
    assert spec_of(cli.api, "iris")["timeout_s"] == 9  # the hand-made change stays

    def writing(self: PodiumClient, *args: Any, **kwargs: Any) -> ModelVersionPushed:
        (model_dir / "extra.txt").write_text("a job still writing")
        return push(self, *args, **kwargs)

    monkeypatch.setattr(PodiumClient, "push_model", writing)
    (model_dir / "extra.txt").write_text("retrained again")
    result = cli("apply", "-f", str(applied))
    assert result.exit_code == 1, result.output
    assert "changed since the plan" in result.stderr and "no endpoint moved" in result.stderr
    with PodiumClient(cli.api.url) as client:
        assert client.endpoint("iris").model_ref == "iris:1"


def test_a_pending_model_is_checked_with_its_documents_framework(
    cli: Cli, tmp_path: Path, model_dir: Path
) -> None:
    """An exec probe on a model pushed as sklearn: refused by the dry run, nothing pushed
    (review2 B8)."""
    text = ONE_MODEL + 'liveness: {{kind: exec, command: ["true"]}}\n'
    result = cli("apply", "-f", str(_write(tmp_path, model_dir, text)), "--yes")
    assert result.exit_code == 1, result.output
    assert "documents[1].liveness" in result.stderr
    assert _pushes(cli) == []
