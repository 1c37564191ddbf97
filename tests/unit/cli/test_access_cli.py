"""The access-control commands' own checks, before anything is sent (no server needed:
PODIUM_URL points at a closed port, so a request would fail differently)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from podium.cli.access import parse_duration
from podium.cli.main import app
from tests.support.inproc import InProcessPodium
from tests.support.server import free_port
from tests.unit.cli.conftest import Cli


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("2w", 1209600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1d", "0", "0.5s", "3y", "1 d 2h"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["tokens", "create", "ci", "--scope", "read", "-p", "a", "--all-projects"], "not both"),
        (["tokens", "create", "ci", "--scope", "read", "--burst", "5"], "--burst needs --rps"),
        (["tokens", "create", "ci", "--scope", "read", "--expires-in", "soon"], "duration"),
        (["tokens", "create", "ci"], "--scope"),
        (["secrets", "set", "HF", "--from-env", "PODIUM_TEST_NOT_SET"], "is not set"),
        (["usage", "--group-by", "week"], "endpoint or day"),
        (["projects", "update", "team"], "nothing to change"),
        (["projects", "update", "team", "--unlimited", "max_disks"], "not a quota"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    env = {"PODIUM_URL": f"http://127.0.0.1:{free_port()}", "PODIUM_TEST_NOT_SET": None}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert says in result.stderr


def test_the_token_comes_from_the_option_else_the_env_else_the_credentials(
    cli: Cli, api: InProcessPodium, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("--token", "pod_from_option", "ls")
    assert api.authorizations[-1] == "Bearer pod_from_option"
    cli("ls")  # the fixture's PODIUM_TOKEN: the server's admin token
    assert api.authorizations[-1] == f"Bearer {api.token}"
    monkeypatch.delenv("PODIUM_TOKEN")
    monkeypatch.setenv("PODIUM_HOME", str(api.settings.home))
    cli("ls")  # nothing given: $PODIUM_HOME/credentials, as `podium up` wrote it
    assert api.authorizations[-1] == f"Bearer {api.token}"


def test_projects_take_and_show_the_memory_quota(cli: Cli) -> None:
    cli("projects", "create", "team", "--max-cpus", "1", "--max-memory-mb", "8192")
    shown = cli("projects", "ls").stdout
    assert "MEMORY MIB" in shown and "0/8192" in shown
    cli("projects", "update", "team", "--unlimited", "max_memory_mb")
    assert '"max_memory_mb": null' in cli("projects", "ls", "--json").stdout
