"""Rich tables and small formatters for CLI output. Pure: builds renderables, prints nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text

from podium.client import (
    AuditEntry,
    EndpointPublic,
    EndpointStatus,
    EventPublic,
    ModelPublic,
    ModelVersionPublic,
    ProjectView,
    ReplicaPublic,
    ReplicaState,
    SecretView,
    TokenView,
    UsageReport,
    WhoAmI,
)

STATUS_STYLE: dict[str, str] = {
    EndpointStatus.RUNNING: "green",
    EndpointStatus.PENDING: "yellow",
    EndpointStatus.INITIALIZING: "yellow",
    EndpointStatus.UPDATING: "cyan",
    EndpointStatus.PAUSED: "dim",
    EndpointStatus.SCALED_TO_ZERO: "blue",
    EndpointStatus.FAILED: "bold red",
    EndpointStatus.DELETING: "magenta",
    ReplicaState.READY: "green",
    ReplicaState.STARTING: "yellow",
    ReplicaState.DRAINING: "cyan",
    ReplicaState.STOPPING: "magenta",
    ReplicaState.EXITED: "red",
}


def status_text(status: str) -> Text:
    return Text(str(status), style=STATUS_STYLE.get(status, ""))


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def when(at: datetime | None) -> str:
    """Local time, to the second."""
    if at is None:
        return "-"
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _table(*columns: str) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _add(table: Table, *cells: str | Text) -> None:
    """Add a row of literal text (never rich markup: names and messages are data)."""
    table.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells))


def models_table(models: Sequence[ModelPublic]) -> Table:
    table = _table("NAME", "LATEST", "VERSIONS", "FRAMEWORK", "SIZE")
    for m in models:
        latest = next((v for v in m.versions if v.version == m.latest), None)
        _add(
            table,
            m.name,
            str(m.latest),
            str(len(m.versions)),
            (latest.framework if latest else None) or "-",
            human_size(latest.size_bytes) if latest else "-",
        )
    return table


def versions_table(versions: Sequence[ModelVersionPublic]) -> Table:
    table = _table("REF", "FRAMEWORK", "SIZE", "FILES", "SHA256", "CREATED", "USED BY")
    for v in versions:
        _add(
            table,
            v.ref,
            v.framework or "-",
            human_size(v.size_bytes),
            str(v.files),
            v.sha256[:12],
            when(v.created_at),
            ", ".join(v.used_by) or "-",
        )
    return table


def version_details(v: ModelVersionPublic) -> Table:
    return key_values(
        [
            ("ref", v.ref),
            ("framework", v.framework or "-"),
            ("size", f"{human_size(v.size_bytes)} ({v.size_bytes} bytes, {v.files} files)"),
            ("sha256", v.sha256),
            ("source", v.source),
            ("created", when(v.created_at)),
            ("used by", ", ".join(v.used_by) or "-"),
        ]
    )


def per_min(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def millis(value: float | None) -> str:
    """A latency in milliseconds: `12.3ms`, `1.2s` from a second on, `-` when unknown."""
    if value is None:
        return "-"
    return f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.1f}ms"


def percent(fraction: float | None) -> str:
    """0.0833 → `8.3%`; `-` when unknown (no request)."""
    return "-" if fraction is None else f"{fraction * 100:.1f}%"


def duration(seconds: float | None) -> str:
    """An uptime, two units at most: `45s`, `12m05s`, `3h12m`, `2d04h`; `-` when none."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _count(value: int | float | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:g}"


def endpoints_table(endpoints: Sequence[EndpointPublic]) -> Table:
    """NAME MODEL STATUS READY REQ/MIN LATENCY ERR% UPTIME URL: the figures over the last
    5 minutes (LATENCY the average), the URL last, cut short rather than wrapped."""
    table = _table("NAME", "MODEL", "STATUS", "READY", "REQ/MIN", "LATENCY", "ERR%", "UPTIME")
    for i, column in enumerate(table.columns):
        column.no_wrap = True  # on a narrow terminal the URL gives way, not the figures
        column.justify = "right" if i >= 4 else "left"
    table.add_column("URL", overflow="ellipsis")
    for ep in endpoints:
        _add(
            table,
            ep.name,
            ep.model_ref,
            status_text(ep.status),
            f"{ep.ready_replicas}/{ep.desired_replicas}",
            per_min(ep.requests_per_min),
            millis(ep.avg_latency_ms),
            percent(ep.error_rate),
            duration(ep.uptime_s),
            ep.url,
        )
    return table


def endpoint_summary(ep: EndpointPublic) -> Table:
    status = status_text(ep.status)
    if ep.status_reason:
        status.append(f" ({ep.status_reason})")
    scaling = ep.spec.scaling
    served = f"{_count(ep.requests)} in 24 h, {per_min(ep.requests_per_min)}/min (last 5 min)"
    return key_values(
        [
            ("name", ep.name),
            ("status", status),
            ("model", f"{ep.model_ref} ({ep.spec.framework})"),
            ("revision", str(ep.revision)),
            ("replicas", f"{ep.ready_replicas}/{ep.desired_replicas} ready"),
            ("scaling", f"{scaling.min_replicas}..{scaling.max_replicas}"),
            ("requests", served),
            ("latency", f"{millis(ep.avg_latency_ms)} average (last 5 min)"),
            ("errors", f"{percent(ep.error_rate)} 5xx (last 5 min)"),
            ("uptime", duration(ep.uptime_s)),
            ("url", ep.url),
            ("created", when(ep.created_at)),
            ("updated", when(ep.updated_at)),
        ]
    )


def replicas_table(replicas: Sequence[ReplicaPublic]) -> Table:
    """The instance list: what each replica is, runs on and served (last 5 minutes)."""
    table = _table(
        "REPLICA",
        "REV",
        "STATE",
        "PID",
        "CPUS",
        "GPUS",
        "UPTIME",
        "REQUESTS",
        "REQ/MIN",
        "LATENCY",
        "RESTARTS",
    )
    for column in table.columns:
        column.no_wrap = True  # on a narrow terminal the address gives way
    table.add_column("ADDRESS", overflow="ellipsis")
    for r in replicas:
        _add(
            table,
            r.replica_id,
            str(r.revision),
            status_text(r.state),
            str(r.pid) if r.pid is not None else "-",
            _count(r.cpus),
            _count(r.gpus),
            duration(r.uptime_s),
            _count(r.requests),
            per_min(r.requests_per_min),
            millis(r.avg_latency_ms),
            str(r.restarts),
            f"{r.host}:{r.port}",
        )
    return table


def events_table(events: Sequence[EventPublic]) -> Table:
    table = _table("ID", "AT", "KIND", "MESSAGE")
    for e in events:
        _add(table, str(e.id), when(e.at), str(e.kind), e.message)
    return table


def key_values(rows: Sequence[tuple[str, str | Text]]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        _add(table, key, value)
    return table


# ------------------------------------------------------------ access control


def _projects(projects: Sequence[str] | None) -> str:
    return "(all)" if projects is None else ", ".join(projects) or "-"


def whoami_table(me: WhoAmI) -> Table:
    return key_values(
        [
            ("token", f"{me.name} ({me.id})"),
            ("scopes", ", ".join(sorted(me.scopes))),
            ("projects", _projects(me.projects)),
            ("expires", when(me.expires_at) if me.expires_at else "never"),
        ]
    )


def tokens_table(tokens: Sequence[TokenView]) -> Table:
    table = _table("ID", "NAME", "SCOPES", "PROJECTS", "CREATOR", "CREATED", "EXPIRES", "LIMIT")
    for t in tokens:
        expires = when(t.expires_at) if t.expires_at else "never"
        if t.revoked_at is not None:
            expires = f"revoked {when(t.revoked_at)}"
        limit = f"{t.rate_limit.rps:g}/s burst {t.rate_limit.burst}" if t.rate_limit else "-"
        _add(
            table,
            t.id,
            t.name,
            ", ".join(t.scopes),
            _projects(t.projects),
            t.creator or "-",
            when(t.created_at),
            expires,
            limit,
        )
    return table


def _quota(used: float, limit: float | None) -> str:
    return f"{used:g}/{limit:g}" if limit is not None else f"{used:g}"


def projects_table(projects: Sequence[ProjectView]) -> Table:
    table = _table("NAME", "ENDPOINTS", "REPLICAS", "CPUS", "GPUS", "MEMORY MIB", "DESCRIPTION")
    for p in projects:
        q, u = p.quotas, p.usage
        _add(
            table,
            p.name,
            _quota(u.endpoints, q.max_endpoints),
            _quota(u.replicas, q.max_replicas),
            _quota(u.cpus, q.max_cpus),
            _quota(u.gpus, q.max_gpus),
            _quota(u.memory_mb, q.max_memory_mb),
            p.description or "",
        )
    return table


def secrets_table(secrets: Sequence[SecretView]) -> Table:
    table = _table("PROJECT", "NAME", "SET BY", "CREATED", "UPDATED")
    for sec in secrets:
        _add(
            table,
            sec.project,
            sec.name,
            sec.created_by or "-",
            when(sec.created_at),
            when(sec.updated_at),
        )
    return table


def audit_table(entries: Sequence[AuditEntry]) -> Table:
    table = _table("ID", "AT", "ACTOR", "ACTION", "OBJECT", "PROJECT", "RESULT", "ADDRESS")
    for e in entries:
        actor = f"{e.actor_name} ({e.actor})" if e.actor_name else (e.actor or "-")
        _add(
            table,
            str(e.id),
            when(e.at),
            actor,
            e.action,
            " ".join(x for x in (e.object_kind, e.object_name) if x) or "-",
            e.project or "-",
            str(e.result) if e.result is not None else "-",
            e.address or "-",
        )
    return table


def usage_table(report: UsageReport) -> Table:
    key = "DAY" if report.group_by == "day" else "ENDPOINT"
    table = _table("PROJECT", key, "INSTANCE TYPE", "REPLICA-HOURS", f"COST ({report.currency})")
    for r in report.rows:
        _add(
            table,
            r.project,
            (r.day if report.group_by == "day" else r.endpoint) or "-",
            r.instance_type or "-",
            f"{r.replica_seconds / 3600:.2f}",
            f"{r.cost:.2f}" if r.cost is not None else "-",
        )
    total = f"{report.total_cost:.2f}" if report.total_cost is not None else "-"
    _add(table, "total", "", "", f"{report.total_replica_seconds / 3600:.2f}", total)
    return table
