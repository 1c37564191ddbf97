"""Endpoint commands: deploy, update, ls, describe, pause, resume, wake, scale, rm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from pydantic import ValidationError
from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text

from podium.cli._common import ProjectOpt, client_for, console, parse_pairs, print_json
from podium.cli.render import endpoint_summary, endpoints_table, events_table, replicas_table
from podium.client import (
    EndpointCreate,
    EndpointPublic,
    EndpointStatus,
    EndpointUpdate,
    EventPublic,
    Invalid,
    PodiumClient,
    invalid_from_validation,
)

M = TypeVar("M", EndpointCreate, EndpointUpdate)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Name = Annotated[str, typer.Argument(help="Endpoint name.")]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Wait until it is running (update: until the change is rolled out).",
    ),
]
WaitTimeout = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait with --wait.", min=0)
]
Model = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="NAME, NAME:VERSION, hf://ORG/NAME@REV or s3://BUCKET/PREFIX."
    ),
]
Framework = Annotated[
    str | None,
    typer.Option("--framework", help="Runtime: sklearn, onnx, python, … (default: the model's)."),
]
Task = Annotated[str | None, typer.Option("--task", help="Task, e.g. text-classification.")]
InstanceType = Annotated[str | None, typer.Option("--instance-type", help="e.g. cpu-small.")]
MinReplicas = Annotated[int | None, typer.Option("--min-replicas", min=0)]
MaxReplicas = Annotated[int | None, typer.Option("--max-replicas", min=1)]
MaxConcurrency = Annotated[
    int | None, typer.Option("--max-concurrency", min=1, help="In-flight requests per replica.")
]
Env = Annotated[list[str] | None, typer.Option("--env", "-e", metavar="KEY=VALUE")]
Label = Annotated[list[str] | None, typer.Option("--label", "-l", metavar="KEY=VALUE")]


def deploy(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Endpoint name (with -f: overrides the file's).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A YAML endpoint spec.", dir_okay=False)
    ] = None,
    model: Model = None,
    framework: Framework = None,
    task: Task = None,
    instance_type: InstanceType = None,
    min_replicas: MinReplicas = None,
    max_replicas: MaxReplicas = None,
    max_concurrency: MaxConcurrency = None,
    env: Env = None,
    label: Label = None,
    trust_pickle: Annotated[
        bool, typer.Option("--trust-pickle", help="Allow pickle models (they run code).")
    ] = False,
    wait: Wait = False,
    timeout: WaitTimeout = 300.0,
    project: ProjectOpt = None,
) -> None:
    """Deploy a model as a new endpoint, from options or from a YAML spec (-f)."""
    data: dict[str, Any] = _load_spec_file(file) if file else {}
    if file is None and not model:  # without a name, the server derives one from the model
        ctx.fail("missing --model (or give a spec file with -f)")
    flags = {
        "name": name,
        "model": model,
        "framework": framework,
        "task": task,
        "instance_type": instance_type,
        "max_concurrency": max_concurrency,
        "project": project,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    _merge(data, "scaling", {"min_replicas": min_replicas, "max_replicas": max_replicas})
    _merge(data, "env", parse_pairs(env, "--env"))
    _merge(data, "labels", parse_pairs(label, "--label"))
    if trust_pickle:
        data["trust_pickle"] = True
    spec = _validate(EndpointCreate, data, file)
    client = client_for(ctx)
    ep = client.deploy(spec)
    typer.echo(f"endpoint {ep.name} created: revision {ep.revision}, status {ep.status}")
    typer.echo(f"url: {ep.url}")
    if wait:
        _wait_running(client, ep.name, ep.revision, timeout, spec.project)


def update(
    ctx: typer.Context,
    name: Name,
    model: Model = None,
    framework: Framework = None,
    task: Task = None,
    instance_type: InstanceType = None,
    min_replicas: MinReplicas = None,
    max_replicas: MaxReplicas = None,
    max_concurrency: MaxConcurrency = None,
    env: Env = None,
    label: Label = None,
    trust_pickle: Annotated[bool | None, typer.Option("--trust-pickle/--no-trust-pickle")] = None,
    wait: Wait = False,
    timeout: WaitTimeout = 300.0,
    project: ProjectOpt = None,
) -> None:
    """Change an endpoint; --env and --label add to (or replace keys of) the current ones."""
    new_env, new_labels = parse_pairs(env, "--env"), parse_pairs(label, "--label")
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "model": model,
            "framework": framework,
            "task": task,
            "instance_type": instance_type,
            "max_concurrency": max_concurrency,
            "trust_pickle": trust_pickle,
        }.items()
        if v is not None
    }
    if not changes and not new_env and not new_labels and min_replicas is max_replicas is None:
        ctx.fail("nothing to change: give at least one option")
    client = client_for(ctx)
    if new_env or new_labels or min_replicas is not None or max_replicas is not None:
        current = client.endpoint(name, project=project).spec
        if new_env:
            changes["env"] = {**current.env, **new_env}
        if new_labels:
            changes["labels"] = {**current.labels, **new_labels}
        if min_replicas is not None or max_replicas is not None:
            changes["scaling"] = {
                "min_replicas": _first(min_replicas, current.scaling.min_replicas),
                "max_replicas": _first(max_replicas, current.scaling.max_replicas),
            }
    ep = client.update(name, _validate(EndpointUpdate, changes, None), project=project)
    typer.echo(f"endpoint {ep.name} updated: revision {ep.revision}, status {ep.status}")
    if wait:
        # Keyed on the revision this update made: done once only its replicas serve (the old
        # ones gone); a failure of this revision is an error, even while older ones serve.
        with console(stderr=True).status(f"waiting for revision {ep.revision} of {name}…"):
            ep = client.wait_rolled_out(
                name, ep.revision, timeout=timeout, poll=0.5, project=project
            )
        typer.echo(
            f"endpoint {ep.name} is {ep.status}: revision {ep.revision}, "
            f"{ep.ready_replicas}/{ep.desired_replicas} replicas ready at {ep.url}"
        )


def ls(
    ctx: typer.Context,
    status: Annotated[EndpointStatus | None, typer.Option("--status", "-s")] = None,
    label: Label = None,
    name: Annotated[str | None, typer.Option("--name", help="Part of the name.")] = None,
    as_json: JsonFlag = False,
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="Only this project (default: all you may read)."),
    ] = None,
) -> None:
    """List endpoints."""
    endpoints = client_for(ctx).endpoints(
        status=status, label=parse_pairs(label, "--label") or None, name=name, project=project
    )
    if as_json:
        print_json([ep.model_dump(mode="json") for ep in endpoints])
    elif not endpoints:
        typer.echo("no endpoints" + (" match" if status or label or name else " yet"))
    else:
        console().print(endpoints_table(endpoints))


def describe(
    ctx: typer.Context, name: Name, as_json: JsonFlag = False, project: ProjectOpt = None
) -> None:
    """Show an endpoint: spec, status and reason, revision, replicas, last 10 events."""
    client = client_for(ctx)
    ep = client.endpoint(name, project=project)
    events = last_events(client, name, 10, project)
    if as_json:
        print_json(
            {**ep.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]}
        )
        return
    spec_yaml = yaml.safe_dump(ep.spec.model_dump(mode="json"), sort_keys=False).rstrip()
    parts: list[Any] = [
        endpoint_summary(ep),
        Text("\nSpec", style="bold"),
        Syntax(spec_yaml, "yaml", theme="ansi_dark", background_color="default"),
        Text("\nReplicas", style="bold"),
        replicas_table(ep.replicas) if ep.replicas else Text("none"),
        Text("\nEvents", style="bold"),
        events_table(events) if events else Text("none"),
    ]
    console().print(Group(*parts))


def pause(ctx: typer.Context, name: Name, project: ProjectOpt = None) -> None:
    """Stop all replicas; the endpoint keeps its spec and URL."""
    _said(client_for(ctx).pause(name, project=project))


def resume(ctx: typer.Context, name: Name, project: ProjectOpt = None) -> None:
    """Start a paused endpoint again."""
    _said(client_for(ctx).resume(name, project=project))


def wake(ctx: typer.Context, name: Name, project: ProjectOpt = None) -> None:
    """Start a scaled-to-zero endpoint now, before the first request."""
    _said(client_for(ctx).wake(name, project=project), replicas=True)


def scale(
    ctx: typer.Context,
    name: Name,
    min_replicas: Annotated[int | None, typer.Option("--min", min=0)] = None,
    max_replicas: Annotated[int | None, typer.Option("--max", min=1)] = None,
    zero: Annotated[
        bool,
        typer.Option(
            "--zero",
            help="Stop every replica now; the next request wakes it (unlike pause).",
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Set the replica bounds (a missing bound keeps its current value), or scale to zero
    now with --zero."""
    if zero:
        if min_replicas is not None or max_replicas is not None:
            ctx.fail("--zero excludes --min and --max")
        ep = client_for(ctx).scale_to_zero(name, project=project)
        typer.echo(
            f"endpoint {ep.name} scaled to zero: status {ep.status} (the next request wakes it)"
        )
        return
    if min_replicas is None and max_replicas is None:
        ctx.fail("give --min, --max, both, or --zero")
    client = client_for(ctx)
    if min_replicas is None or max_replicas is None:
        current = client.endpoint(name, project=project).spec.scaling
        min_replicas = _first(min_replicas, current.min_replicas)
        max_replicas = _first(max_replicas, current.max_replicas)
    ep = client.scale(name, min_replicas, max_replicas, project=project)
    typer.echo(f"endpoint {ep.name} scales {min_replicas}..{max_replicas}: status {ep.status}")


def rm(ctx: typer.Context, name: Name, project: ProjectOpt = None) -> None:
    """Delete an endpoint (its replicas are stopped)."""
    ep = client_for(ctx).delete(name, project=project)
    typer.echo(f"endpoint {ep.name} is being deleted")


# ------------------------------------------------------------ helpers


def last_events(
    client: PodiumClient, name: str, n: int, project: str | None = None
) -> list[EventPublic]:
    """The last `n` events (the API pages forward from the oldest)."""
    kept: list[EventPublic] = []
    after, page = 0, 500
    while True:
        items = client.events(name, after=after, limit=page, project=project)
        kept = (kept + items)[-n:]
        if len(items) < page:
            return kept
        after = items[-1].id


def _wait_running(
    client: PodiumClient, name: str, revision: int, timeout: float, project: str
) -> None:
    """Until every desired replica of `revision` is ready (not just the first one)."""
    with console(stderr=True).status(f"waiting for {name} to be running…"):
        ep = client.wait_rolled_out(name, revision, timeout=timeout, poll=0.5, project=project)
    typer.echo(
        f"endpoint {ep.name} is {ep.status}: "
        f"{ep.ready_replicas}/{ep.desired_replicas} replicas ready at {ep.url}"
    )


def _said(ep: EndpointPublic, *, replicas: bool = False) -> None:
    ready = f" ({ep.ready_replicas}/{ep.desired_replicas} replicas ready)" if replicas else ""
    typer.echo(f"endpoint {ep.name}: {ep.status}{ready}")


def _first(value: int | None, default: int) -> int:
    return default if value is None else value


def _merge(data: dict[str, Any], key: str, extra: dict[str, Any]) -> None:
    extra = {k: v for k, v in extra.items() if v is not None}
    if not extra:
        return
    current = data.get(key)
    data[key] = {**current, **extra} if isinstance(current, dict) else extra


def _load_spec_file(path: Path) -> dict[str, Any]:
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as e:
        raise Invalid(f"cannot read {path}: {e.strerror or e}", field="file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise Invalid(f"{path} is not valid YAML: {e}".replace("\n", " "), field="file") from None
    if not isinstance(data, dict):
        raise Invalid(f"{path} must hold a mapping of spec fields", field="file")
    return data


def _validate(cls: type[M], data: dict[str, Any], file: Path | None) -> M:
    """Validate locally, before anything is sent: a clear error naming the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        error = invalid_from_validation(e)
        if file is not None:
            error = Invalid(f"{error.message} (in {file})", field=error.field)
        raise error from None
