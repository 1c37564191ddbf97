"""Project and accounting commands: `podium projects …`, `podium audit`, `podium usage`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from podium.cli._common import client_for as _client
from podium.cli._common import console, print_json
from podium.cli.render import audit_table, projects_table, usage_table
from podium.client import QUOTA_NAMES

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProjectName = Annotated[str, typer.Argument(help="Project name (3-15 characters).")]
Description = Annotated[str | None, typer.Option("--description", help="What it is for.")]
MaxEndpoints = Annotated[int | None, typer.Option("--max-endpoints", min=0)]
MaxReplicas = Annotated[int | None, typer.Option("--max-replicas", min=0)]
MaxCpus = Annotated[float | None, typer.Option("--max-cpus", min=0)]
MaxGpus = Annotated[int | None, typer.Option("--max-gpus", min=0)]
MaxMemoryMb = Annotated[
    int | None, typer.Option("--max-memory-mb", min=0, help="Replicas * memory, in MiB.")
]

projects_app = typer.Typer(help="Projects and their quotas.", no_args_is_help=True)


def _quotas(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


@projects_app.command("ls")
def projects_ls(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List projects with their usage against their quotas (used/limit)."""
    items = _client(ctx).projects()
    if as_json:
        print_json([p.model_dump(mode="json") for p in items])
    else:
        console().print(projects_table(items))


@projects_app.command("create")
def projects_create(
    ctx: typer.Context,
    name: ProjectName,
    description: Description = None,
    max_endpoints: MaxEndpoints = None,
    max_replicas: MaxReplicas = None,
    max_cpus: MaxCpus = None,
    max_gpus: MaxGpus = None,
    max_memory_mb: MaxMemoryMb = None,
) -> None:
    """Create a project (admin); a quota not given is unlimited."""
    quotas = _quotas(
        max_endpoints=max_endpoints,
        max_replicas=max_replicas,
        max_cpus=max_cpus,
        max_gpus=max_gpus,
        max_memory_mb=max_memory_mb,
    )
    made = _client(ctx).create_project(name, quotas=quotas or None, description=description)
    typer.echo(f"project {made.name} created")


@projects_app.command("update")
def projects_update(
    ctx: typer.Context,
    name: ProjectName,
    description: Description = None,
    max_endpoints: MaxEndpoints = None,
    max_replicas: MaxReplicas = None,
    max_cpus: MaxCpus = None,
    max_gpus: MaxGpus = None,
    max_memory_mb: MaxMemoryMb = None,
    unlimited: Annotated[
        list[str] | None,
        typer.Option("--unlimited", metavar="QUOTA", help="Lift a quota, e.g. max_replicas."),
    ] = None,
) -> None:
    """Change a project's description or quotas (admin)."""
    quotas: dict[str, Any] = _quotas(
        max_endpoints=max_endpoints,
        max_replicas=max_replicas,
        max_cpus=max_cpus,
        max_gpus=max_gpus,
        max_memory_mb=max_memory_mb,
    )
    for quota in unlimited or ():
        key = quota.replace("-", "_").removeprefix("__")
        if key not in QUOTA_NAMES:
            raise typer.BadParameter(
                f"{quota!r} is not a quota: {', '.join(QUOTA_NAMES)}", param_hint="'--unlimited'"
            )
        quotas[key] = None
    if not quotas and description is None:
        ctx.fail("nothing to change: give --description, a quota or --unlimited")
    made = _client(ctx).update_project(name, quotas=quotas or None, description=description)
    typer.echo(f"project {made.name} updated")


@projects_app.command("rm")
def projects_rm(ctx: typer.Context, name: ProjectName) -> None:
    """Delete an empty project (admin)."""
    _client(ctx).delete_project(name)
    typer.echo(f"project {name} deleted")


def audit(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="e.g. endpoint.create, token.revoke.")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="A token id.")] = None,
    after: Annotated[int | None, typer.Option("--after", min=0, help="After this id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Show the audit log: who did what, when, from where (admin)."""
    entries = _client(ctx).audit(
        project=project, action=action, actor=actor, after_id=after, limit=limit
    )
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
    elif not entries:
        typer.echo("no audit entries")
    else:
        console().print(audit_table(entries))


def usage(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Start (ISO date or time, included).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="End (ISO date or time, excluded).")
    ] = None,
    group_by: Annotated[str, typer.Option("--group-by", help="endpoint or day.")] = "endpoint",
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Replica-hours and cost per endpoint or per day."""
    if group_by not in ("endpoint", "day"):
        raise typer.BadParameter("use endpoint or day", param_hint="'--group-by'")
    client = _client(ctx)
    if as_csv:
        typer.echo(client.usage_csv(project, start, end, group_by), nl=False)
        return
    report = client.usage(project, start, end, group_by)
    if as_json:
        print_json(report.model_dump(mode="json", by_alias=True))
    else:
        console().print(usage_table(report))
