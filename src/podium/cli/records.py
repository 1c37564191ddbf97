"""`podium requests NAME`: an endpoint's request records as a table, CSV, or followed.

The table is newest first; `--follow` prints the newest `--limit` oldest first, then polls
the API every second (`after=` the newest id seen) and prints new records as they are
written, until Ctrl-C. The server writes records in batches (every half second by
default), so a followed record shows up about a second after its request ended.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from podium.cli._common import ProjectOpt, client_for, console
from podium.client import PodiumClient, RequestRecordPublic

POLL_S = 1.0  # how often --follow asks for new records
_sleep = time.sleep  # (tests replace it)
COLUMNS = ("time", "request id", "status", "error", "latency", "queue", "upstream",
           "replica", "route", "tokens", "bytes", "client")  # fmt: skip


def requests(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Endpoint name.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records (Ctrl-C ends).")
    ] = False,
    errors: Annotated[
        bool, typer.Option("--errors", help="Only failures (no answer, 4xx, 5xx, cut).")
    ] = False,
    slow: Annotated[
        float | None,
        typer.Option("--slow", metavar="MS", min=0, help="Only those that took at least MS ms."),
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (every column).")] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=100_000, help="Records to show.")
    ] = 50,
    replica: Annotated[str | None, typer.Option("--replica", help="Only this replica.")] = None,
    project: ProjectOpt = None,
) -> None:
    """List an endpoint's request records, newest first."""
    client = client_for(ctx)
    filters: dict[str, Any] = {
        "status": "error" if errors else None,
        "min_latency_ms": slow,
        "replica": replica,
        "project": project,
    }
    if as_csv:
        if follow:
            raise typer.BadParameter("--csv cannot follow", param_hint="'--follow'")
        typer.echo(client.requests_csv(name, limit=limit, **filters), nl=False)
        return
    if follow:
        _follow(client, name, limit, filters)
        return
    found = client.iter_requests(name, page_size=min(limit, 1000), **filters)
    items = list(itertools.islice(found, limit))
    if not items:
        typer.echo("no requests")
        return
    console().print(records_table(items))


def _follow(client: PodiumClient, name: str, limit: int, filters: dict[str, Any]) -> None:
    out = console()
    newest = client.requests(name, limit=min(limit, 1000), **filters).items
    out.print(records_table(list(reversed(newest)), fixed=True))
    after = newest[0].id if newest else 0
    try:
        while True:
            page = client.requests(name, after=after, limit=1000, **filters).items
            if page:
                out.print(records_table(page, header=False, fixed=True))
                after = page[-1].id
            if len(page) < 1000:
                _sleep(POLL_S)
    except KeyboardInterrupt:
        pass


_RIGHT = frozenset({"status", "latency", "queue", "upstream"})
_WIDTHS = (23, 20, 6, 15, 10, 9, 10, 22, 28, 9, 13, 15)  # --follow: every batch aligned


def records_table(
    items: Iterable[RequestRecordPublic], *, header: bool = True, fixed: bool = False
) -> Table:
    """The records as rows (in the order given). `fixed`: the same column widths whatever
    the rows (`--follow` prints a table per batch, `header=False` after the first)."""
    table = Table(box=None, header_style="bold", pad_edge=False, show_header=header)
    for column, width in zip(COLUMNS, _WIDTHS, strict=True):
        justify: JustifyMethod = "right" if column in _RIGHT else "left"
        table.add_column(
            column,
            width=width if fixed else None,
            no_wrap=True,
            overflow="ellipsis" if fixed else "fold",
            justify=justify,
        )
    for r in items:
        table.add_row(
            Text(_time(r.received_at)),
            Text(r.request_id),
            Text(str(r.status), style=_status_style(r)),
            Text(r.error or "-", style="red" if r.error else ""),
            Text(_ms(r.latency_ms)),
            Text(_ms(r.queue_ms) if r.queue_ms else "-"),
            Text(_ms(r.upstream_ms)),
            Text(r.replica_id or "-"),
            Text(f"{r.method} {r.route}"),
            Text(_pair(r.tokens_in, r.tokens_out)),
            Text(f"{r.bytes_in}/{r.bytes_out}"),
            Text(r.client or "-"),
        )
    return table


def _time(unix: float) -> str:
    """Local time to the millisecond."""
    return datetime.fromtimestamp(unix).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _pair(tokens_in: int | None, tokens_out: int | None) -> str:
    if tokens_in is None and tokens_out is None:
        return "-"
    return f"{'-' if tokens_in is None else tokens_in}/{'-' if tokens_out is None else tokens_out}"


def _status_style(r: RequestRecordPublic) -> str:
    if r.status == 0 or r.status >= 500:
        return "bold red"
    if r.status >= 400 or r.error:
        return "yellow"
    return "green"
