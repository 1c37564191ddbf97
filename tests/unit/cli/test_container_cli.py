"""A container endpoint's `container` block through the CLI: `deploy -f` YAML, `describe`,
`plan`/`apply`/`export` (against the real API, in-process; the test plays the controller,
so no container starts)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.cli.conftest import Cli, spec_of

BLOCK = {
    "image": "localhost/podium-test/busybox:1",
    "command": None,
    "args": ["--port", "{port}"],
    "port": 9000,
    "health_route": "/healthz",
    "env": {"MODE": "test"},
    "model_mount": "/models",
    "pull_policy": "never",
    "registry_secret": None,
}
SPEC = """\
name: box
model: iris:1
framework: container
container:
  image: localhost/podium-test/busybox:1
  args: ["--port", "{port}"]
  port: 9000
  health_route: /healthz
  env: {MODE: test}
  model_mount: /models
  pull_policy: never
scaling: {min_replicas: 0}
"""


def test_deploy_file_and_describe_show_the_container_block(
    cli: Cli, pushed: str, tmp_path: Path
) -> None:
    path = tmp_path / "box.yaml"
    path.write_text(SPEC)
    result = cli("deploy", "-f", str(path))
    assert result.exit_code == 0, result.output
    assert spec_of(cli.api, "box")["container"] == BLOCK

    described = cli("describe", "box", "--json")
    assert described.exit_code == 0, described.output
    assert yaml.safe_load(described.stdout)["spec"]["container"] == BLOCK
    text = cli("describe", "box")
    assert text.exit_code == 0, text.output
    for line in ("container:", "image: localhost/podium-test/busybox:1", "pull_policy: never"):
        assert line in text.stdout, text.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("pull_policy: never", "pull_policy: sometimes"))
    refused = cli("deploy", "-f", str(bad))
    assert refused.exit_code != 0
    assert "container.pull_policy" in refused.stderr, refused.stderr


def test_apply_and_export_round_trip_the_container_block(
    cli: Cli, pushed: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "podium.yaml"
    manifest.write_text(SPEC.replace("model: iris:1", "model: iris"))
    plan = cli("plan", "-f", str(manifest))
    assert plan.exit_code == 2, plan.output
    assert "+ create endpoint box" in plan.stdout
    done = cli("apply", "-f", str(manifest), "--yes")
    assert done.exit_code == 0, done.output
    assert spec_of(cli.api, "box")["container"] == BLOCK
    assert cli("plan", "-f", str(manifest)).exit_code == 0  # no changes

    exported = cli("export", "box")
    assert exported.exit_code == 0, exported.output
    doc = yaml.safe_load(exported.stdout)
    assert doc["framework"] == "container"
    assert doc["container"]["image"] == BLOCK["image"]
    out = tmp_path / "exported.yaml"
    out.write_text(exported.stdout)
    assert cli("plan", "-f", str(out)).stdout == "No changes.\n"

    manifest.write_text(
        SPEC.replace("busybox:1", "busybox:2").replace("model: iris:1", "model: iris")
    )
    changed = cli("plan", "-f", str(manifest))
    assert changed.exit_code == 2, changed.output
    assert "~ update endpoint box (new revision)" in changed.stdout
    assert "container.image" in changed.stdout, changed.stdout
