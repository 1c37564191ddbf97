"""`podium up` says how to call the `podium` command when it is not on PATH."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from podium.server.app import cli_hint


@pytest.fixture
def venv_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "podium", "activate"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    return bin_dir


def test_the_hint_names_the_command_and_activate(
    venv_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    hint = cli_hint()
    assert str(venv_bin / "podium") in hint
    assert f"source {venv_bin / 'activate'}" in hint


def test_no_hint_when_the_command_is_on_path(
    venv_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")
    assert cli_hint() == ""
