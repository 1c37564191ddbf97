"""The version a replica reports to protocols (OIP v2 `versions`, `model_version`): the
model's own version, from the revision's resolved reference, never the endpoint revision."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from podium.backends.base import ModelSource, ReplicaLaunch
from podium.backends.launch import replica_command
from podium.core.settings import Settings
from podium.core.spec import model_version


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("iris:3", "3"),
        ("iris", None),  # unresolved: names no version
        ("hf://org/model@v1.2", "v1.2"),
        ("hf://org/model", "main"),
        ("not a ref!", None),
    ],
)
def test_the_version_a_reference_names(ref: str, version: str | None) -> None:
    assert model_version(ref) == version


def test_the_replica_is_told_its_model_version(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    launch = ReplicaLaunch(
        replica_id="iris-r2-x",
        endpoint="iris",
        revision=2,
        runtime="sklearn",
        model=ModelSource(ref="iris:3", location=str(tmp_path)),
        instance_type=settings.instance_type("cpu-small"),
        model_version="3",
    )
    argv, _ = replica_command(launch, tmp_path, 5, tmp_path / "s.json", sys.executable)
    assert argv[argv.index("--model-version") + 1] == "3"
    assert argv[argv.index("--revision") + 1] == "2"
    argv, _ = replica_command(
        replace(launch, model_version=None), tmp_path, 5, tmp_path / "s.json", sys.executable
    )
    assert "--model-version" not in argv
