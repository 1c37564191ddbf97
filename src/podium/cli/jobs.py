"""`podium jobs …`: batch jobs (issue 13) — every line of a JSONL file through an endpoint.

podium jobs create NAME --input data.jsonl [--output out.jsonl] [--concurrency N]
                        [--path /] [--wait]
podium jobs watch ID          a progress bar (done/failed, rate, ETA) until it ends
podium jobs ls [NAME]         jobs, newest first
podium jobs get ID            one job (JSON)
podium jobs cancel ID
podium jobs output ID [-o FILE]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from podium.cli._common import ProjectOpt, client_for, console, print_json
from podium.client import Job, JobOut, PodiumClient
from podium.core.tasks import JobStatus

jobs_app = typer.Typer(help="Batch jobs: a JSONL file through an endpoint.", no_args_is_help=True)
POLL_S = 0.5
JobIdArg = Annotated[str, typer.Argument(help="The job's id (job_…).")]


@jobs_app.command("create")
def jobs_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Endpoint name.")],
    input: Annotated[
        Path,
        typer.Option("--input", "-i", exists=True, dir_okay=False, help="The JSONL input."),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the output here (implies --wait).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=256)] = 8,
    path: Annotated[str, typer.Option("--path", help="The replica path of each line.")] = "/",
    wait: Annotated[bool, typer.Option("--wait", help="Show progress until it ends.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Upload INPUT and run each of its lines through endpoint NAME."""
    client = client_for(ctx)
    job = client.create_job(name, input, path=path, concurrency=concurrency, project=project)
    typer.echo(f"job {job.id} created ({input.name} → {name}{path}, concurrency {concurrency})")
    if wait or output is not None:
        info = _watch(client, job)
        if output is not None and info.output_file is not None:
            output.write_bytes(client.file_content(info.output_file))
            typer.echo(f"output written to {output}")
        if info.status is not JobStatus.COMPLETED:
            raise typer.Exit(1)


@jobs_app.command("watch")
def jobs_watch(ctx: typer.Context, job_id: JobIdArg) -> None:
    """A progress bar (lines done, failed, rate, ETA) until the job ends."""
    client = client_for(ctx)
    info = _watch(client, client.job(job_id))
    if info.status is not JobStatus.COMPLETED:
        raise typer.Exit(1)


def _watch(client: PodiumClient, job: Job) -> JobOut:
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed  {task.fields[rate]}  ETA {task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console(stderr=True),
    )
    with bar:
        task = bar.add_task(job.id, total=None, failed=0, rate="-", eta="-")
        while True:
            info = job.refresh()
            bar.update(
                task,
                total=info.lines_total or None,
                completed=info.lines_done,
                failed=info.lines_failed,
                rate="-" if info.rate_per_s is None else f"{info.rate_per_s:.1f}/s",
                eta="-" if info.eta_s is None else f"{info.eta_s:.0f}s",
                description=f"{job.id} [{info.status.value}]",
            )
            if job.done:
                break
            time.sleep(POLL_S)
    line = f"job {info.id} {info.status.value}: {info.lines_succeeded} succeeded, "
    line += f"{info.lines_failed} failed of {info.lines_total}"
    typer.echo(line + (f" ({info.error})" if info.error else ""))
    return info


@jobs_app.command("ls")
def jobs_ls(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this endpoint's jobs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Jobs, newest first."""
    items = client_for(ctx).jobs(name, project=project, limit=limit)
    if as_json:
        print_json([j.model_dump(mode="json") for j in items])
        return
    if not items:
        typer.echo("no jobs")
        return
    table = Table("id", "endpoint", "status", "lines", "failed", "rate", "created")
    for j in items:
        table.add_row(
            j.id,
            j.endpoint or "-",
            j.status.value,
            f"{j.lines_done}/{j.lines_total}",
            str(j.lines_failed),
            "-" if j.rate_per_s is None else f"{j.rate_per_s:.1f}/s",
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created_at)),
        )
    console().print(table)


@jobs_app.command("get")
def jobs_get(ctx: typer.Context, job_id: JobIdArg) -> None:
    """One job and its progress, as JSON."""
    print_json(client_for(ctx).job(job_id).info.model_dump(mode="json"))


@jobs_app.command("cancel")
def jobs_cancel(ctx: typer.Context, job_id: JobIdArg) -> None:
    """Cancel a job: its unfinished lines are cancelled, the output keeps those done."""
    info = client_for(ctx).cancel_job(job_id)
    typer.echo(f"job {info.id} {info.status.value}")


@jobs_app.command("output")
def jobs_output(
    ctx: typer.Context,
    job_id: JobIdArg,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Write it here.")] = None,
) -> None:
    """The job's output JSONL (one line per input line, in input order)."""
    client = client_for(ctx)
    info = client.job(job_id).info
    if info.output_file is None:
        typer.echo(f"job {job_id} has no output yet ({info.status.value})", err=True)
        raise typer.Exit(1)
    data = client.file_content(info.output_file)
    if out is None:
        typer.echo(data.decode("utf-8", "replace"), nl=False)
    else:
        out.write_bytes(data)
        typer.echo(f"output written to {out}")
