from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from podium import __version__
from podium.cli._common import error_line
from podium.cli.main import app
from podium.client import Invalid, NotFound, Retryable
from podium.core.errors import Invalid as ServerInvalid
from podium.core.settings import Settings
from podium.server.hosts import check_no_auth
from tests.support.server import free_port
from tests.unit.cli.conftest import Cli


def test_error_line_format() -> None:
    assert (
        error_line(Invalid("must not exceed", field="scaling")) == "error: scaling: must not exceed"
    )
    assert error_line(NotFound("endpoint 'x' not found")) == "error: endpoint 'x' not found"
    assert error_line(Invalid("first\n  second\n")) == "error: first; second"
    assert error_line(Retryable("busy", retry_after=1.5)) == "error: busy (retry in 1.5s)"
    assert error_line(Invalid("scaling: said already", field="scaling")) == (
        "error: scaling: said already"
    )


def test_connection_refused_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["--url", url, "ls"])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot reach Podium at {url}: ")
    assert lines[0].endswith("is `podium up` running?")


def test_url_option_beats_env(cli: Cli) -> None:
    env = {"PODIUM_URL": f"http://127.0.0.1:{free_port()}"}
    result = CliRunner().invoke(app, ["--url", cli.api.url, "ls"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "no endpoints yet\n"


def test_version_and_help() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).stdout == f"podium {__version__}\n"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("up", "deploy", "ls", "describe", "invoke", "logs", "models", "scale"):
        assert command in result.stdout


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Settings, bool]]:
    """Stands in for podium.server.main so `podium up` can be tested without a server."""
    calls: list[tuple[Settings, bool]] = []
    module: Any = types.ModuleType("podium.server.main")

    def serve(settings: Settings, *, demo: bool = False) -> None:
        calls.append((settings, demo))

    module.serve = serve
    monkeypatch.setitem(sys.modules, "podium.server.main", module)
    return calls


def test_up_passes_settings_and_demo(
    fake_server: list[tuple[Settings, bool]], tmp_path: Path
) -> None:
    env = {"PODIUM_HOME": str(tmp_path), "PODIUM_PORT": "9100"}
    result = CliRunner().invoke(app, ["up", "--demo"], env=env)
    assert result.exit_code == 0, result.output
    [(settings, demo)] = fake_server
    assert (settings.home, settings.host, settings.port, demo) == (
        tmp_path,
        "127.0.0.1",
        9100,
        True,
    )

    result = CliRunner().invoke(app, ["up", "--host", "0.0.0.0", "--port", "8123"], env=env)
    assert result.exit_code == 0, result.output
    settings, demo = fake_server[-1]
    assert (settings.host, settings.port, demo) == ("0.0.0.0", 8123, False)


def test_up_no_auth_only_on_loopback(
    fake_server: list[tuple[Settings, bool]], tmp_path: Path
) -> None:
    env = {"PODIUM_HOME": str(tmp_path)}
    result = CliRunner().invoke(app, ["up", "--no-auth", "--host", "0.0.0.0"], env=env)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "--no-auth" in result.stderr and "loopback" in result.stderr
    # the server's one check says it (`server.hosts.check_no_auth`), as a usage error
    with pytest.raises(ServerInvalid) as refused:
        check_no_auth(Settings(home=tmp_path, host="0.0.0.0", auth=False))
    assert f"Invalid value: {refused.value}" in " ".join(result.stderr.split())
    assert refused.value.field == "--no-auth"
    assert fake_server == []  # nothing started
    for host in ("127.0.0.1", "::1", "localhost"):
        result = CliRunner().invoke(app, ["up", "--no-auth", "--host", host], env=env)
        assert result.exit_code == 0, result.output
        assert fake_server[-1][0].auth is False
    CliRunner().invoke(app, ["up"], env=env)
    assert fake_server[-1][0].auth is True


def test_up_bad_settings_is_one_line(fake_server: list[tuple[Settings, bool]]) -> None:
    result = CliRunner().invoke(app, ["up"], env={"PODIUM_PORT": "eighty"})
    assert result.exit_code == 1
    assert result.stderr == "error: PODIUM_PORT must be an integer, not 'eighty'\n"
    assert fake_server == []
