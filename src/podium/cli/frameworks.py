"""`podium frameworks [QUERY]`: the frameworks catalog, as a table or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from podium.cli._common import client_for, console, print_json
from podium.core.catalog_schemas import FrameworkPublic, GpuNeed

_GPU_STYLE = {GpuNeed.REQUIRED: "yellow", GpuNeed.OPTIONAL: "", GpuNeed.NONE: "dim"}


def frameworks(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(help="Search names, summaries and tasks (case-insensitive)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the frameworks an endpoint may use: what each serves, whether it is installed
    and usable on the server's backend, and whether it needs a GPU."""
    found = client_for(ctx).frameworks(query)
    if as_json:
        print_json([f.model_dump(mode="json") for f in found])
        return
    if not found:
        typer.echo(f"no framework matches {query!r}" if query else "no frameworks")
        return
    console().print(frameworks_table(found))


def frameworks_table(found: Sequence[FrameworkPublic]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "KIND", "SERVES", "TASKS", "PROTOCOLS", "GPU", "USABLE"):
        table.add_column(column, overflow="fold")
    for f in found:
        usable = Text("yes", style="green") if f.usable else Text(f"no: {f.why_not}", style="red")
        table.add_row(
            Text(f.name, style="bold"),
            Text(f.kind.value),
            Text(f.summary),
            Text(", ".join(f.tasks) or "-"),
            Text(", ".join(p.value for p in f.protocols) or "-"),
            Text(f.gpu.value, style=_GPU_STYLE[f.gpu]),
            usable,
        )
    return table
