"""`podium top [NAME]`: what every endpoint (or one endpoint's replicas) is doing now.

Polls `GET /api/v1/live` every `--interval` seconds and shows the difference between the
last two answers: requests per second, p95 latency (`core.histogram.quantile` over the
difference of the latency buckets), the share of 5xx answers; with what is true now:
status, ready/desired replicas, in flight, held, CPU and memory (the newest point of the
metrics history). The footer shows the request records' buffer; records dropped are never
hidden and shown in red. Ctrl-C quits (exit 0); `--once` polls twice, prints one frame
and exits (for scripts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from podium.cli._common import client_for, console
from podium.cli.render import human_size, millis, status_text
from podium.client import LiveCounts, LiveEndpoint, LiveRecords, LiveView
from podium.core.histogram import quantile

Poll = Callable[[], LiveView]


@dataclass(frozen=True, slots=True)
class Rates:
    """One endpoint's or replica's figures between two polls (None: not known yet)."""

    requests_per_s: float | None = None
    p95_ms: float | None = None
    errors: float | None = None  # the share of 5xx answers among the interval's requests


def rates(
    before: LiveCounts | None, after: LiveCounts, seconds: float, bounds: Sequence[float]
) -> Rates:
    """The figures of the interval between two cumulative counts. A count that went down
    means the gateway restarted: the new counts are the interval's."""
    if before is None or seconds <= 0:
        return Rates()
    if after.requests < before.requests or any(
        a < b for a, b in zip(after.latency_buckets, before.latency_buckets, strict=False)
    ):
        before = LiveCounts()
    requests = after.requests - before.requests
    buckets = [a - b for a, b in zip(after.latency_buckets, before.latency_buckets, strict=True)]
    p95 = quantile(buckets, 0.95, bounds) if len(buckets) == len(bounds) + 1 else None
    errors = after.by_class[5] - before.by_class[5]
    return Rates(
        requests_per_s=requests / seconds,
        p95_ms=None if p95 is None else p95 * 1000,
        errors=errors / requests if requests > 0 else None,
    )


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _memory(value: int | None) -> str:
    return "-" if value is None else human_size(value)


def _table(*columns: str) -> Table:
    table = Table(box=None, header_style="bold reverse", pad_edge=False, expand=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < 2 else "right", no_wrap=True)
    return table


def _row(table: Table, *cells: str | Text) -> None:
    table.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells))


def endpoints_frame(previous: LiveView | None, current: LiveView) -> Table:
    """One row per endpoint: NAME STATUS READY REQ/S P95 ERR% IN FLIGHT HELD CPU MEMORY."""
    seconds = current.taken_at - previous.taken_at if previous is not None else 0.0
    before = {e.key: e.counts for e in previous.endpoints} if previous is not None else {}
    table = _table(
        "NAME", "STATUS", "READY", "REQ/S", "P95", "ERR%", "IN FLIGHT", "HELD", "CPU", "MEMORY"
    )
    for e in current.endpoints:
        r = rates(before.get(e.key), e.counts, seconds, current.latency_bounds_s)
        _row(
            table,
            e.key or e.name,
            status_text(e.status),
            f"{e.ready}/{e.desired}",
            _num(r.requests_per_s),
            millis(r.p95_ms),
            _pct(r.errors),
            str(e.in_flight),
            Text(str(e.held), style="yellow" if e.held else ""),
            _cpu(e.resources.cpu_percent),
            _memory(e.resources.rss_bytes),
        )
    return table


def replicas_frame(previous: LiveView | None, current: LiveView, endpoint: LiveEndpoint) -> Table:
    """One endpoint's replicas: REPLICA STATE REV REQ/S P95 ERR% IN FLIGHT CPU MEMORY (P95
    of the upstream time: sent to the replica → its last byte)."""
    seconds = current.taken_at - previous.taken_at if previous is not None else 0.0
    before = {}
    if previous is not None:
        before = {r.replica_id: r.counts for e in previous.endpoints for r in e.replicas}
    table = _table("REPLICA", "STATE", "REV", "REQ/S", "P95", "ERR%", "IN FLIGHT", "CPU", "MEMORY")
    for rep in endpoint.replicas:
        r = rates(before.get(rep.replica_id), rep.counts, seconds, current.latency_bounds_s)
        _row(
            table,
            rep.replica_id,
            status_text(rep.state),
            str(rep.revision),
            _num(r.requests_per_s),
            millis(r.p95_ms),
            _pct(r.errors),
            str(rep.in_flight),
            _cpu(rep.resources.cpu_percent),
            _memory(rep.resources.rss_bytes),
        )
    return table


def footer(records: LiveRecords | None, taken_at: float, interval: float) -> Text:
    """The records' buffer (dropped in red when any), the time of the counts, the keys."""
    text = Text()
    if records is None:
        text.append("request records: off")
    else:
        text.append(f"records: {records.offered} offered, ")
        text.append(f"{records.dropped} dropped", style="bold red" if records.dropped else "")
        text.append(f", {records.buffered} buffered")
        if records.lost:  # the store refused them: never hidden either
            text.append(f", {records.lost} lost", style="bold red")
    at = datetime.fromtimestamp(taken_at).strftime("%H:%M:%S") if taken_at else "-"
    text.append(f"  ·  {at}, every {interval:g}s  ·  Ctrl-C quits", style="dim")
    return text


def frame(
    previous: LiveView | None, current: LiveView, name: str | None, interval: float
) -> RenderableType:
    """The whole screen: the endpoints (or NAME's summary and replicas), then the footer."""
    parts: list[RenderableType] = []
    if name is None:
        if current.endpoints:
            parts.append(endpoints_frame(previous, current))
        else:
            parts.append(Text("no endpoints"))
    else:
        parts.append(endpoints_frame(previous, current))
        for endpoint in current.endpoints:
            parts.append(Text(""))
            if endpoint.replicas:
                parts.append(replicas_frame(previous, current, endpoint))
            else:
                parts.append(Text("no replicas"))
    parts.append(Text(""))
    parts.append(footer(current.records, current.taken_at, interval))
    return Group(*parts)


def watch(
    poll: Poll,
    show: Callable[[LiveView | None, LiveView], RenderableType],
    interval: float,
    *,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """Poll and redraw until Ctrl-C (which ends it quietly)."""
    pause = sleep or time.sleep
    try:
        previous = poll()
        with Live(show(None, previous), console=console(), auto_refresh=False) as live:
            while True:
                pause(interval)
                current = poll()
                live.update(show(previous, current), refresh=True)
                previous = current
    except KeyboardInterrupt:
        return


def top(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="One endpoint: show its replicas.", show_default=False)
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            help="Only this project (default: all you may read; with NAME: default).",
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option("--interval", "-n", min=0.1, max=3600, help="Seconds between refreshes."),
    ] = 1.0,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame (two polls, --interval apart) and exit.")
    ] = False,
) -> None:
    """Live view of the endpoints (req/s, p95, errors, held, CPU, memory); Ctrl-C quits."""
    client = client_for(ctx)

    def poll() -> LiveView:
        return client.live(name, project=project)

    def show(previous: LiveView | None, current: LiveView) -> RenderableType:
        return frame(previous, current, name, interval)

    if once:
        first = poll()
        time.sleep(interval)
        console().print(show(first, poll()))
        return
    watch(poll, show, interval)
