"""The `podium` command: a typer app over the REST API (through `podium.client`).

Only `podium up` reaches past the API: it imports the server lazily and runs it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from podium import __version__
from podium.cli import (
    access,
    apply,
    endpoints,
    frameworks,
    jobs,
    models,
    observe,
    projects,
    records,
    tasks,
    top,
)
from podium.cli._common import PodiumGroup
from podium.core.settings import ALL_ROLES, Settings

app = typer.Typer(
    cls=PodiumGroup,
    name="podium",
    help="Podium: deploy models as live, autoscaled HTTP endpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"podium {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="PODIUM_URL",
            help="Podium server URL (default http://127.0.0.1:8000).",
            show_envvar=True,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="PODIUM_TOKEN",
            help="API token (default: $PODIUM_HOME/credentials, made by `podium up`).",
            show_envvar=True,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Talk to a Podium server, or start one with `podium up`."""
    ctx.obj = {"url": url, "token": token}


@app.command()
def up(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default $PODIUM_HOST or 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port (default $PODIUM_PORT or 8000).", min=1, max=65535),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Also deploy the demo endpoint `iris`.")
    ] = False,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Turn access control off (no tokens checked). Loopback hosts only.",
        ),
    ] = False,
) -> None:
    """Run Podium on this machine (API, gateway, controller; state in $PODIUM_HOME).

    With access control on (the default), a fresh home gets an admin token in
    $PODIUM_HOME/credentials (mode 0600), which the CLI and SDK here use by themselves."""
    settings = Settings.from_env()
    # `podium up` is every role in one process, whatever PODIUM_ROLES says (that is for
    # `podium server`).
    overrides: dict[str, Any] = {"roles": ALL_ROLES}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if no_auth:
        overrides["auth"] = False
    settings = settings.with_overrides(**overrides)
    # lazy: the only command that needs the server
    from podium.core.errors import Invalid
    from podium.server.hosts import check_no_auth

    try:
        check_no_auth(settings)  # the server's own check; here a usage error (exit 2)
    except Invalid as e:
        raise typer.BadParameter(str(e)) from None
    from podium.server.main import serve

    serve(settings, demo=demo)


@app.command()
def server(
    roles: Annotated[
        str | None,
        typer.Option(
            help="What this process runs: any of api,gateway,controller, comma-separated "
            "(default $PODIUM_ROLES or all three). Several processes need PostgreSQL.",
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default $PODIUM_HOST or 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port (default $PODIUM_PORT or 8000).", min=1, max=65535),
    ] = None,
    server_id: Annotated[
        str | None,
        typer.Option(
            "--server-id",
            help="This process's name among the servers sharing $PODIUM_HOME (default: the port).",
        ),
    ] = None,
) -> None:
    """Run one Podium server process with some roles, one of several sharing a PostgreSQL
    database (PODIUM_DATABASE_URL): API, gateway, controller candidate (one leads)."""
    from podium.core.errors import Invalid
    from podium.core.settings import parse_roles
    from podium.server.hosts import check_no_auth

    settings = Settings.from_env()
    overrides: dict[str, Any] = {}
    try:
        if roles is not None:
            overrides["roles"] = parse_roles(roles, "roles")
        if host is not None:
            overrides["host"] = host
        if port is not None:
            overrides["port"] = port
        if overrides:
            settings = settings.with_overrides(**overrides)
        check_no_auth(settings)
    except Invalid as e:
        raise typer.BadParameter(str(e)) from None
    from podium.server.main import check_roles, serve

    try:
        check_roles(settings)  # a split on SQLite: one line, before anything is touched
    except Invalid as e:
        typer.echo(f"podium server: {e}", err=True)
        raise typer.Exit(2) from None
    serve(settings, server_id=server_id or str(settings.port))


app.add_typer(models.app, name="models")
app.add_typer(access.tokens_app, name="tokens")
app.add_typer(access.secrets_app, name="secrets")
app.add_typer(projects.projects_app, name="projects")
app.add_typer(jobs.jobs_app, name="jobs")  # batch jobs (issue 13)

_COMMANDS = (
    endpoints.deploy,
    endpoints.update,
    endpoints.ls,
    endpoints.describe,
    endpoints.pause,
    endpoints.resume,
    endpoints.wake,
    endpoints.scale,
    endpoints.rm,
    observe.invoke,
    observe.logs,
    observe.metrics,
    observe.events,
    records.requests,  # request records (issue 12)
    tasks.tasks,  # async tasks (issue 13)
    tasks.task,
    access.whoami,
    projects.audit,
    projects.usage,
    top.top,  # podium top
    apply.plan,  # endpoints as code (issue 14)
    apply.apply,
    apply.export,
    frameworks.frameworks,  # the frameworks catalog (issue 14)
)
for _command in _COMMANDS:
    app.command(_command.__name__)(_command)


def run() -> None:
    """Console-script entry point (`podium = "podium.cli.main:run"`)."""
    app()
