"""Async tasks on the command line (issue 13):

    podium invoke NAME -d JSON --async [--wait] [--timeout S]   queue a call (observe.py)
    podium tasks NAME [--status S] [--limit N]                  an endpoint's tasks
    podium task ID [--json] [--cancel]                          one task, its attempts

`invoke --async` prints the task id (and where to poll it); with `--wait` it waits for the
result and prints it as `invoke` does. A task that failed exits 1 with its error.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from podium.cli._common import ProjectOpt, client_for, console
from podium.client import PodiumClient, TaskFailed, TaskOut, TaskStatus

_STYLE = {
    "pending": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
    "expired": "dim",
}


def tasks(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Endpoint name.")],
    status: Annotated[
        TaskStatus | None, typer.Option("--status", "-s", help="Only tasks in this state.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=500, help="Tasks to show.")
    ] = 50,
    project: ProjectOpt = None,
) -> None:
    """List an endpoint's async tasks, newest first."""
    page = client_for(ctx).tasks(name, status=status, limit=limit, project=project)
    if not page.items:
        typer.echo("no tasks")
        return
    console().print(tasks_table(page.items))


def task(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id (task_…).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the task as JSON.")] = False,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Cancel it (pending or running) first.")
    ] = False,
) -> None:
    """Show one task: its state, result, error and every attempt."""
    future = client_for(ctx).task(task_id)
    view = future.cancel() if cancel else future.refresh()
    if as_json:
        typer.echo(json.dumps(view.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    console().print(task_detail(view))


def invoke_async(
    client: PodiumClient,
    name: str,
    body: Any,
    *,
    path: str,
    project: str | None,
    wait: bool,
    timeout: float | None,
) -> None:
    """`podium invoke --async`: queue, then print the id, or wait and print the result."""
    future = client.predict_async(name, body, path=path, project=project)
    if not wait:
        typer.echo(future.id)
        typer.echo(f"poll it with: podium task {future.id}", err=True)
        return
    try:
        answer = future.result(timeout=timeout)
    except TaskFailed as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    except TimeoutError as e:
        typer.echo(f"error: {e} (podium task {future.id})", err=True)
        raise typer.Exit(1) from None
    if isinstance(answer, bytes):
        typer.echo(answer.decode("utf-8", "replace"))
    elif isinstance(answer, str):
        typer.echo(answer)
    else:
        typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))


# ---------------------------------------------------------------- rendering


def tasks_table(items: list[TaskOut]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "STATUS", "CREATED", "ATTEMPTS", "PRI", "QUEUE", "PATH", "ERROR"):
        table.add_column(column, overflow="fold")
    for t in items:
        table.add_row(
            Text(t.id),
            _status(t.status),
            Text(_time(t.created_at)),
            Text(f"{t.attempts}/{t.max_attempts}"),
            Text(str(t.priority)),
            Text("-" if t.queue_position is None else str(t.queue_position)),
            Text(f"{t.method} {t.path}"),
            Text(t.error or "-", style="red" if t.error else ""),
        )
    return table


def task_detail(t: TaskOut) -> Table:
    """The task's fields, then its attempts, as one two-column table."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, str | Text]] = [
        ("id", t.id),
        ("endpoint", f"{t.endpoint} (project {t.project})"),
        ("status", _status(t.status)),
        ("call", f"{t.method} {t.path}"),
        ("priority", str(t.priority)),
        ("attempts", f"{t.attempts} of {t.max_attempts}"),
        ("created", _time(t.created_at)),
        ("started", _time(t.started_at)),
        ("finished", _time(t.finished_at)),
        ("expires", _time(t.expires_at)),
    ]
    if t.queue_position is not None:
        rows.append(("queue position", str(t.queue_position)))
    if t.idempotency_key is not None:
        rows.append(("idempotency key", t.idempotency_key))
    if t.job_id is not None:
        rows.append(("job", f"{t.job_id} line {t.line}"))
    if t.result_status is not None:
        rows.append(("result status", str(t.result_status)))
    if t.result_url is not None:
        kind = t.result_type or "?"
        shown = json.dumps(t.result, ensure_ascii=False) if t.result is not None else t.result_url
        rows.append(("result", f"{shown} ({kind})"))
    if t.error is not None:
        rows.append(("error", Text(t.error, style="red")))
    if t.callback is not None:
        cb = t.callback
        state = cb.state or "waiting for the task"
        extra = f", {cb.attempts} deliveries" if cb.attempts else ""
        rows.append(
            ("callback", f"{cb.url}: {state}{extra}" + (f" ({cb.error})" if cb.error else ""))
        )
    for a in t.attempt_log or []:
        took = "" if a.finished_at is None else f" in {a.finished_at - a.started_at:.2f} s"
        answer = "" if a.status is None else f" HTTP {a.status}"
        where = "" if a.replica_id is None else f" on {a.replica_id}"
        why = "" if a.reason is None else f": {a.reason}"
        rows.append((f"attempt {a.attempt}", f"{a.outcome or 'running'}{answer}{where}{took}{why}"))
    for label, value in rows:
        table.add_row(Text(label), value if isinstance(value, Text) else Text(value))
    return table


def _status(status: TaskStatus | str) -> Text:
    value = str(status.value if isinstance(status, TaskStatus) else status)
    return Text(value, style=_STYLE.get(value, ""))


def _time(unix: float | None) -> str:
    if unix is None:
        return "-"
    return datetime.fromtimestamp(unix).strftime("%Y-%m-%d %H:%M:%S")
