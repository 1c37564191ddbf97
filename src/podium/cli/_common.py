"""What every command shares: the client, error reporting, consoles, K=V and JSON parsing.

Errors: a `PodiumError` raised by any command becomes one line on stderr,
`error: FIELD: MESSAGE`, and exit status 1 (`PodiumGroup`); bad command-line input (a
missing argument, a bad option value, an unknown command, `typer.BadParameter`) becomes one
line too, `error: MESSAGE (see 'podium COMMAND -h')`, and exit status 2, except for the
commands whose 2 means "changes" (`plan`, `apply --dry-run`: `usage_status`), where it is 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

# typer exports no public name for click's usage errors: since 0.29 it vendors click as the
# private `typer._click`; before, and should that move, click's own classes are the ones.
try:
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - another typer than the one pinned
    from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[assignment]

from podium.client import PodiumClient, PodiumError, RateLimited, Retryable

CLIENT_TIMEOUT = 60.0

# The project of the endpoint or model a command names (the API's `?project=`).
ProjectOpt = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Its project (default: the `default` project)."),
]


class PodiumGroup(TyperGroup):
    """The root command group: turns Podium errors into one line and exit status 1, and
    usage errors into one line and exit status 2 (instead of typer's boxed message)."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except NoArgsIsHelpError as e:  # the help was printed already
            sys.exit(e.exit_code)
        except ClickException as e:
            typer.echo(usage_line(e), err=True)
            argv = sys.argv[1:] if args is None else list(args)
            sys.exit(usage_status(e, argv, valued=self.valued_options()))
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def valued_options(self) -> set[str]:
        """The group's own options that take a value (`--url URL`, `--token T`)."""
        return {
            name
            for p in self.params
            if p.param_type_name == "option"
            and not getattr(p, "is_flag", False)
            and not getattr(p, "count", False)
            for name in [*p.opts, *p.secondary_opts]
        }

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PodiumError as e:
            typer.echo(error_line(e), err=True)
            raise typer.Exit(1) from None
        except OSError as e:  # a local file we were asked to read or write
            where = f": {e.filename}" if e.filename else ""
            typer.echo(f"error: {e.strerror or e}{where}", err=True)
            raise typer.Exit(1) from None


def usage_status(
    error: ClickException, args: list[str], *, valued: Collection[str] = frozenset()
) -> int:
    """The exit status of a usage error: 1 in `plan` and `apply --dry-run`, whose 2 says
    "there are changes" to CI (a typo must not read as changes), else click's (2).
    `valued`: the group's options that take a value, skipped with it to find the command."""
    ctx = getattr(error, "ctx", None)
    name = getattr(getattr(ctx, "command", None), "name", None)
    if name is None:  # a parser error (`-f` without its value) knows no command
        name = _command_name(args, valued)
    if name == "plan" or (name == "apply" and "--dry-run" in args):
        return 1
    return error.exit_code


def _command_name(args: list[str], valued: Collection[str]) -> str | None:
    """The first argument that is neither a group option nor the value of one."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in valued  # `--url URL`; `--url=URL` is one argument
        else:
            return arg
    return None


def error_line(error: PodiumError) -> str:
    """`error: FIELD: MESSAGE` on one line (no FIELD when the message starts with it)."""
    lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
    message = "; ".join(lines) or type(error).__name__
    if isinstance(error, Retryable | RateLimited):
        message += f" (retry in {error.retry_after:g}s)"
    if error.field and not message.startswith((f"{error.field}:", f"{error.field} ")):
        message = f"{error.field}: {message}"
    return f"error: {message}"


def usage_line(error: ClickException) -> str:
    """`error: MESSAGE (see 'podium COMMAND -h')` on one line."""
    lines = [line.strip() for line in error.format_message().splitlines() if line.strip()]
    message = "; ".join(lines) or type(error).__name__
    ctx = getattr(error, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} -h')"
    return f"error: {message}"


def client_for(ctx: typer.Context) -> PodiumClient:
    """The client for this invocation (closed when the command ends). Its token: --token,
    else $PODIUM_TOKEN, else $PODIUM_HOME/credentials for a loopback URL only (the SDK's own
    discovery)."""
    root = ctx.find_root()
    given = root.obj if isinstance(root.obj, dict) else {}
    client = PodiumClient(given.get("url"), token=given.get("token"), timeout=CLIENT_TIMEOUT)
    return ctx.with_resource(client)


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); wide when not a terminal, so pipes see it all."""
    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 200
    return out


def parse_pairs(values: Iterable[str] | None, option: str) -> dict[str, str]:
    """`["K=V", …]` -> `{K: V}`; a value without `=` or with an empty key is a usage error."""
    pairs: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=f"'{option}'")
        pairs[key.strip()] = value
    return pairs


def read_json_arg(value: str, option: str = "--json") -> Any:
    """JSON given inline, as `@file.json`, or as `@-` (stdin)."""
    source = "argument"
    text = value
    if value.startswith("@"):
        name = value[1:]
        if name == "-":
            text, source = sys.stdin.read(), "stdin"
        else:
            path = Path(name).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                raise typer.BadParameter(
                    f"cannot read {name}: {e.strerror or e}", param_hint=f"'{option}'"
                ) from None
            source = name
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise typer.BadParameter(
            f"the {source} is not valid JSON: {e}", param_hint=f"'{option}'"
        ) from None


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (plain, never reformatted by rich)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
