"""Usage and cost: replica time per endpoint or per UTC day, priced by instance type.

Source: the `replica_usage` rows the controller writes (a row per replica, from its start
to its end; a running one counts up to now), clipped to [from, to). Cost = replica seconds
/ 3600 * the instance type's `price_per_hour` in this server's catalog; a replica sized by
`resources` (type `custom`) is priced by the size its row records, per unit
(`Settings.custom_size`: PODIUM_PRICE_PER_CPU_HOUR, _GIB_HOUR, _GPU_HOUR); a type the
catalog does not know costs 0, and `notes` says so. JSON, or CSV with `format=csv` or
`Accept: text/csv`. Needs `read` on the project; without one, every project the caller may
read.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from podium.api.access import From, needs, readable
from podium.api.deps import CallerDep, SettingsDep, UowDep
from podium.api.problems import responses
from podium.core.access import Scope, endpoint_key, split_key
from podium.core.errors import Invalid
from podium.core.ids import NAME_RULE, PROJECT_RULE, check_name
from podium.core.settings import Settings
from podium.core.spec import InstanceType
from podium.store.usage import GroupBy, UsageTotal, totals

router = APIRouter(prefix="/usage", tags=["usage"], responses=responses(401, 403, 422))

DEFAULT_PERIOD = timedelta(days=30)  # `from` when not given: 30 days before `to`
CURRENCY = "USD"


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


class UsageRow(BaseModel):
    project: str
    endpoint: str | None = Field(None, description="group_by=endpoint: the endpoint's name")
    day: str | None = Field(None, description="group_by=day: the UTC day, YYYY-MM-DD")
    instance_type: str
    cpus: float | None = Field(None, description="`custom` (resources): one replica's CPUs")
    memory_mb: int | None = Field(None, description="`custom`: one replica's memory (MiB)")
    gpus: int | None = Field(None, description="`custom`: one replica's GPUs")
    replica_seconds: float
    cost: float


class UsageReport(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    group_by: GroupBy
    currency: str = CURRENCY
    rows: list[UsageRow]
    total_replica_seconds: float
    total_cost: float
    notes: list[str] = Field(default_factory=list)


def _utc(value: datetime, field: str) -> datetime:
    """`value` in UTC (naive: taken as UTC); 422 naming `field` when that falls outside
    the years 1-9999 (e.g. 0001-01-01T00:00:00+01:00)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"`{field}` is out of range in UTC", field=field) from None


@router.get(
    "",
    response_model=UsageReport,
    response_model_exclude_none=True,
    response_model_by_alias=True,
    responses={200: {"content": {"text/csv": {}}}},
    dependencies=[needs(Scope.READ, From.ANY)],
)
def get_usage(
    request: Request,
    caller: CallerDep,
    uow: UowDep,
    settings: SettingsDep,
    project: Annotated[str | None, Query(description=PROJECT_RULE, max_length=15)] = None,
    endpoint: Annotated[
        str | None, Query(description=f"one endpoint of `project`: {NAME_RULE}", max_length=48)
    ] = None,
    from_: Annotated[
        datetime | None, Query(alias="from", description="start (ISO 8601; default: to - 30 d)")
    ] = None,
    to: Annotated[datetime | None, Query(description="end, excluded (default: now)")] = None,
    group_by: GroupBy = GroupBy.ENDPOINT,
    format: Format | None = None,
) -> Any:
    if endpoint is not None:
        if project is None:
            raise Invalid("`endpoint` needs `project`", field="endpoint")
        check_name(endpoint, "endpoint")
    projects = readable(caller) if project is None else frozenset({project})
    end = _utc(to, "to") if to is not None else datetime.now(UTC)
    if from_ is not None:
        start = _utc(from_, "from")
    elif end - datetime.min.replace(tzinfo=UTC) < DEFAULT_PERIOD:
        raise Invalid(
            f"`to` is less than {DEFAULT_PERIOD.days} days after year 1: give `from` too",
            field="to",
        )
    else:
        start = end - DEFAULT_PERIOD
    if start >= end:
        raise Invalid("`from` must be before `to`", field="from")
    key = None if endpoint is None or project is None else endpoint_key(project, endpoint)
    found = uow.usage.intervals(start, end, projects=projects, endpoint=key)
    report = _report(settings, totals(found, group_by), start, end, group_by)
    wants_csv = format is Format.CSV or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        return Response(_csv(report), media_type="text/csv; charset=utf-8")
    return report


def _report(
    settings: Settings, sums: list[UsageTotal], start: datetime, end: datetime, group: GroupBy
) -> UsageReport:
    rows: list[UsageRow] = []
    unknown: set[str] = set()
    for t in sums:
        where: dict[str, Any] = (
            {"endpoint": split_key(t.group)[1]} if group is GroupBy.ENDPOINT else {"day": t.group}
        )
        known: InstanceType | None
        if t.size is not None:  # `resources`: its recorded size, priced per unit
            known = settings.custom_size(t.size.cpus, t.size.memory_mb, t.size.gpus)
            where.update(cpus=t.size.cpus, memory_mb=t.size.memory_mb, gpus=t.size.gpus)
        else:
            known = settings.instance_types.get(t.instance_type)
        if known is None:
            unknown.add(t.instance_type)
        price = known.price_per_hour if known is not None else 0.0
        rows.append(
            UsageRow(
                project=t.project,
                instance_type=t.instance_type,
                replica_seconds=t.replica_seconds,
                cost=round(t.replica_seconds / 3600 * price, 6),
                **where,
            )
        )
    notes = [
        f"instance type {name!r} is not in this server's catalog: its time costs 0"
        for name in sorted(unknown)
    ]
    return UsageReport.model_validate(
        {
            "from": start,
            "to": end,
            "group_by": group,
            "rows": rows,
            "total_replica_seconds": round(sum(r.replica_seconds for r in rows), 3),
            "total_cost": round(sum(r.cost for r in rows), 6),
            "notes": notes,
        }
    )


def _csv(report: UsageReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    group = report.group_by.value
    writer.writerow(["project", group, "instance_type", "replica_seconds", "cost"])
    for r in report.rows:
        writer.writerow(
            [
                r.project,
                r.endpoint if report.group_by is GroupBy.ENDPOINT else r.day,
                r.instance_type,
                f"{r.replica_seconds:.3f}",
                f"{r.cost:.6f}",
            ]
        )
    return out.getvalue()
