"""`podium models …`: push, list, show and delete models in the model repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from podium.cli._common import ProjectOpt, client_for, console, print_json
from podium.cli.render import human_size, models_table, version_details, versions_table
from podium.client import Invalid
from podium.core.spec import RepoRef, parse_model_ref

app = typer.Typer(help="Push, list, show and delete models.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("push")
def push(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A model folder, file or archive.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name in the repository.")],
    framework: Annotated[
        str | None, typer.Option("--framework", help="Runtime that serves it: sklearn, onnx, …")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Upload a new version of a model (a folder is sent as a .tar.gz)."""
    version = client_for(ctx).push_model(path, name, framework=framework, project=project)
    if not version.created:
        typer.echo(f"already stored as {version.ref} (identical contents)")
        return
    typer.echo(
        f"pushed {version.ref}: {human_size(version.size_bytes)}, {version.files} files, "
        f"sha256 {version.sha256[:12]}"
    )


@app.command("ls")
def ls(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="Only this project (default: all you may read)."),
    ] = None,
) -> None:
    """List models with their latest version."""
    models = client_for(ctx).models(project)
    if as_json:
        print_json([m.model_dump(mode="json") for m in models])
    elif not models:
        typer.echo("no models yet: push one with `podium models push PATH --name NAME`")
    else:
        console().print(models_table(models))


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]")],
    as_json: JsonFlag = False,
    project: ProjectOpt = None,
) -> None:
    """Show a model's versions, or one version in detail."""
    parsed = _repo_ref(ref)
    client = client_for(ctx)
    if parsed.version is not None:
        version = client.model_version(parsed.name, parsed.version, project=project)
        if as_json:
            print_json(version.model_dump(mode="json"))
        else:
            console().print(version_details(version))
        return
    model = client.model(parsed.name, project=project)
    if as_json:
        print_json(model.model_dump(mode="json"))
    else:
        out = console()
        out.print(f"model {model.name} (latest {model.latest})", markup=False)
        out.print(versions_table(model.versions))


@app.command("rm")
def rm(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME[:VERSION]")],
    project: ProjectOpt = None,
) -> None:
    """Delete one version, or a whole model with all its versions."""
    parsed = _repo_ref(ref)
    client_for(ctx).delete_model(str(parsed), project=project)
    what = f"version {parsed}" if parsed.version is not None else f"model {parsed.name}"
    typer.echo(f"deleted {what}")


def _repo_ref(ref: str) -> RepoRef:
    parsed = parse_model_ref(ref, field="ref")
    if not isinstance(parsed, RepoRef):
        raise Invalid(f"{ref!r} is not in the model repository: use NAME or NAME:VERSION")
    return parsed
