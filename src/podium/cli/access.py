"""Access-control commands: `podium whoami`, `podium tokens …`, `podium secrets …`."""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from podium.cli._common import ProjectOpt, client_for, console, print_json
from podium.cli.render import secrets_table, tokens_table, whoami_table

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

tokens_app = typer.Typer(help="Create, list and revoke API tokens (admin).", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Set, list and delete a project's secrets (values are never shown).",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str, option: str = "--expires-in") -> int:
    """`90`, `90s`, `15m`, `12h`, `30d`, `2w` -> whole seconds (> 0)."""
    m = _DURATION.match(value.lower())
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)] if m else 0.0
    if not m or seconds < 1:
        raise typer.BadParameter(
            f"{value!r} is not a duration like 3600, 15m, 12h, 30d or 2w", param_hint=f"'{option}'"
        )
    return int(seconds)


def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show the token in use: its name, id, scopes and projects."""
    me = client_for(ctx).whoami()
    if as_json:
        print_json(me.model_dump(mode="json"))
    else:
        console().print(whoami_table(me))


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the token (who or what uses it).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", "-s", help="admin, deploy, invoke or read (repeatable)."),
    ],
    project: Annotated[
        list[str] | None,
        typer.Option("--project", "-p", help="A project it may act in (repeatable)."),
    ] = None,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="Every project, present and future (admin).")
    ] = False,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="e.g. 12h, 30d (default: never).")
    ] = None,
    rps: Annotated[
        float | None, typer.Option("--rps", min=0.001, help="Rate limit: requests per second.")
    ] = None,
    burst: Annotated[
        int | None, typer.Option("--burst", min=1, help="Rate limit: burst (default: ⌈rps⌉).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a token and print it ONCE (it cannot be shown again)."""
    if all_projects and project:
        raise typer.BadParameter("give --project or --all-projects, not both")
    if burst is not None and rps is None:
        raise typer.BadParameter("--burst needs --rps", param_hint="'--burst'")
    projects: list[str] | None = None if all_projects else (project or ["default"])
    limit = None
    if rps is not None:
        limit = {"rps": rps, "burst": burst if burst is not None else max(1, math.ceil(rps))}
    created = client_for(ctx).create_token(
        name,
        scope,
        projects=projects,
        expires_in_s=parse_duration(expires_in) if expires_in else None,
        rate_limit=limit,
    )
    if as_json:
        print_json(created.model_dump(mode="json"))
    else:
        typer.echo(created.token)
    where = "every project" if created.projects is None else ", ".join(created.projects)
    typer.echo(
        f"token {created.name!r} (id {created.id}) created: {', '.join(created.scopes)} on "
        f"{where}.\nSave it now: it is shown only this once (revoke with "
        f"`podium tokens revoke {created.id}`).",
        err=True,
    )


@tokens_app.command("ls")
def tokens_ls(
    ctx: typer.Context,
    include_revoked: Annotated[
        bool, typer.Option("--all", "-a", help="Also revoked tokens.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List tokens (never their secrets)."""
    tokens = client_for(ctx).tokens(include_revoked=include_revoked)
    if as_json:
        print_json([t.model_dump(mode="json") for t in tokens])
    elif not tokens:
        typer.echo("no tokens")
    else:
        console().print(tokens_table(tokens))


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context, token_id: Annotated[str, typer.Argument(metavar="ID")]
) -> None:
    """Revoke a token: every request with it fails from now on."""
    revoked = client_for(ctx).revoke_token(token_id)
    typer.echo(f"token {revoked.name!r} ({revoked.id}) revoked")


@secrets_app.command("set")
def secrets_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret name.")],
    from_env: Annotated[
        str | None, typer.Option("--from-env", metavar="VAR", help="Read the value from $VAR.")
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", dir_okay=False, help="Read the value from a file."),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Create or replace a secret; the value comes from --from-env, --from-file or stdin
    (never from the command line, where other users and the shell history would see it)."""
    if from_env and from_file:
        raise typer.BadParameter("give --from-env or --from-file, not both")
    if from_env:
        if from_env not in os.environ:
            raise typer.BadParameter(f"${from_env} is not set", param_hint="'--from-env'")
        value = os.environ[from_env]
    elif from_file:
        value = from_file.expanduser().read_text(encoding="utf-8")
    else:
        if sys.stdin.isatty():
            typer.echo("value (end with Ctrl-D):", err=True)
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value  # `echo x |` adds one
    if not value:
        raise typer.BadParameter("the value is empty")
    secret = client_for(ctx).set_secret(name, value, project=project)
    typer.echo(f"secret {secret.name} set in project {secret.project}")


@secrets_app.command("ls")
def secrets_ls(ctx: typer.Context, project: ProjectOpt = None, as_json: JsonFlag = False) -> None:
    """List secrets (names and dates only)."""
    items = client_for(ctx).secrets(project)
    if as_json:
        print_json([s.model_dump(mode="json") for s in items])
    elif not items:
        typer.echo("no secrets")
    else:
        console().print(secrets_table(items))


@secrets_app.command("rm")
def secrets_rm(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret name.")],
    project: ProjectOpt = None,
) -> None:
    """Delete a secret (endpoints that use it fail at their next start)."""
    client_for(ctx).delete_secret(name, project=project)
    typer.echo(f"secret {name} deleted")
