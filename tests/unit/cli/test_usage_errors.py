"""Command-line mistakes are one line on stderr and exit status 2, never a boxed message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.unit.cli.conftest import Cli, spec_of

CASES = [
    (("describe",), "error: Missing argument 'name'."),
    (("nosuch",), "error: No such command 'nosuch'."),
    (("models", "nosuch"), "error: No such command 'nosuch'."),
    (("scale", "iris", "--min", "abc"), "error: Invalid value for '--min': "),
    (("ls", "--status", "bogus"), "error: Invalid value for '--status'"),
    (("deploy",), "error: missing --model (or give a spec file with -f)"),  # no NAME: one is made
    (("deploy", "iris", "-m", "iris", "--env", "NOEQ"), "error: Invalid value for '--env'"),
    (("update", "iris"), "error: nothing to change: give at least one option"),
    (("ls", "--bogus-flag"), "error: No such option: --bogus-flag"),
]


@pytest.mark.parametrize(("args", "start"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_usage_error_is_one_line_exit_2(cli: Cli, args: tuple[str, ...], start: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(start), lines[0]
    assert lines[0].endswith(" -h')")  # where to look next
    assert not any(ch in result.stderr for ch in "╭│╰")
    assert cli.api.requests == []


def test_help_is_still_help(cli: Cli) -> None:
    result = cli("deploy", "--help")
    assert result.exit_code == 0
    assert "--framework" in result.stdout


def test_no_command_prints_the_help_and_exits_2(cli: Cli) -> None:
    result = cli()
    assert result.exit_code == 2
    assert "deploy" in result.output


def test_deploy_without_framework_takes_the_models(cli: Cli, pushed: str) -> None:
    result = cli("deploy", "iris", "--model", "iris")
    assert result.exit_code == 0, result.output
    assert spec_of(cli.api, "iris")["framework"] == "sklearn"


def test_the_cli_imports_without_typers_private_click() -> None:
    """typer's vendored click (`typer._click`) is private: without it, click's own classes."""
    code = (
        "import sys, typer; sys.modules['typer._click.exceptions'] = None\n"
        "import click.exceptions, podium.cli._common as c\n"
        "assert c.ClickException is click.exceptions.ClickException\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--url", "http://127.0.0.1:1", "plan", "-f"),
        ("--token", "abc", "apply", "--dry-run", "-f"),
        ("--url=http://127.0.0.1:1", "plan", "-f"),
    ],
)
def test_a_usage_error_in_plan_after_a_global_option_exits_1(
    cli: Cli, args: tuple[str, ...]
) -> None:
    """2 means "changes" to CI, which often passes --url first (review2 B3)."""
    result = cli(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert cli.api.requests == []
