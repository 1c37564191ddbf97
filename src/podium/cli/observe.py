"""Commands that use or watch an endpoint: invoke, logs, events."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from podium.cli._common import ProjectOpt, client_for, console, print_json, read_json_arg
from podium.cli.render import events_table
from podium.cli.tasks import invoke_async

Name = Annotated[str, typer.Argument(help="Endpoint name.")]


def invoke(
    ctx: typer.Context,
    name: Name,
    payload: Annotated[
        str,
        typer.Option(
            "--json",
            "-d",
            metavar="JSON|@FILE",
            help="Request body: inline JSON, @file.json, or @- for stdin.",
        ),
    ],
    path: Annotated[str, typer.Option("--path", help="Path under the endpoint.")] = "/",
    project: ProjectOpt = None,
    run_async: Annotated[
        bool, typer.Option("--async", help="Queue it as a task; print the task id.")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="With --async: wait for the result and print it.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="S", min=0, help="With --wait: give up after S s."),
    ] = None,
) -> None:
    """Send one request to an endpoint and print its JSON answer (--async: as a task)."""
    body = read_json_arg(payload)
    if (wait or timeout is not None) and not run_async:
        raise typer.BadParameter("--wait and --timeout need --async", param_hint="'--wait'")
    if run_async:
        invoke_async(
            client_for(ctx), name, body, path=path, project=project, wait=wait, timeout=timeout
        )
        return
    answer = client_for(ctx).invoke(name, body, path=path, project=project)
    if isinstance(answer, str):
        typer.echo(answer)
    else:
        typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))


def logs(
    ctx: typer.Context,
    name: Name,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines.")] = False,
    tail: Annotated[int, typer.Option("--tail", "-n", min=0, help="Lines to show first.")] = 200,
    replica: Annotated[str | None, typer.Option("--replica", help="Only this replica.")] = None,
    project: ProjectOpt = None,
) -> None:
    """Print an endpoint's replica logs."""
    client = client_for(ctx)
    if follow:
        try:
            # Over Server-Sent Events; `[replica] line`, as the text stream has it.
            for item in client.follow_logs(name, tail=tail, replica=replica, project=project):
                typer.echo(f"[{item.replica_id}] {item.line}")
        except KeyboardInterrupt:
            pass
        return
    for item in client.logs(name, tail=tail, replica=replica, project=project):
        typer.echo(f"{item.replica_id} | {item.line}")


def metrics(
    ctx: typer.Context,
    name: Name,
    replica: Annotated[str, typer.Argument(help="Replica id (see `podium describe`).")],
    project: ProjectOpt = None,
) -> None:
    """Print one replica's Prometheus metrics (the server asks the replica for them)."""
    typer.echo(client_for(ctx).replica_metrics(name, replica, project=project), nl=False)


def events(
    ctx: typer.Context,
    name: Name,
    after: Annotated[int, typer.Option("--after", min=0, help="Only events after this id.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    project: ProjectOpt = None,
) -> None:
    """List an endpoint's events, oldest first."""
    items = client_for(ctx).events(name, after=after, limit=limit, project=project)
    if as_json:
        print_json([e.model_dump(mode="json") for e in items])
    elif not items:
        typer.echo("no events")
    else:
        console().print(events_table(items))
