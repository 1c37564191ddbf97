"""The metrics history of an endpoint or one of its replicas, as aligned series to plot."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query

from podium.api.access import needs
from podium.api.deps import CtxDep, UowDep
from podium.api.problems import responses
from podium.api.routes.params import ProjectDep, key_of, unix_time
from podium.api.services import metrics_history as history
from podium.core.access import Scope
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.metric_schemas import SERIES, MetricHistory, stored_resolutions

router = APIRouter(prefix="/endpoints", tags=["endpoints"], responses=responses(403, 422))

EndpointName = Annotated[
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]
_TIME = "unix seconds or an ISO 8601 time (UTC when no zone is given)"


@router.get(
    "/{name}/metrics",
    response_model=MetricHistory,
    responses=responses(404),
    dependencies=[needs(Scope.READ)],
)
def get_metrics(
    name: EndpointName,
    project: ProjectDep,
    ctx: CtxDep,
    uow: UowDep,
    series: Annotated[
        str | None,
        Query(max_length=1000, description=f"comma-separated, of: {', '.join(SERIES)}"),
    ] = None,
    since: Annotated[
        str | None, Query(alias="from", max_length=64, description=f"{_TIME}; default: to - 1 h")
    ] = None,
    until: Annotated[
        str | None, Query(alias="to", max_length=64, description=f"{_TIME}; default: now")
    ] = None,
    step: Annotated[
        str | None,
        Query(max_length=8, description="seconds (10, 60, 3600) or auto (default)"),
    ] = None,
    replica: Annotated[str | None, Query(max_length=128, description="one replica")] = None,
) -> MetricHistory:
    """Requests, errors, latency percentiles, load, replicas and resources of the endpoint
    (or of one replica) over [from, to), one value per step (null: no point stored), with
    the scaling events of the range."""
    names = history.parse_series(series)
    now = time.time()
    start, end = history.time_range(unix_time(since, "from"), unix_time(until, "to"), now)
    kept = stored_resolutions(ctx.settings.observability)
    chosen = history.pick_step(step, start, end, now, kept)
    return history.history(
        uow,
        key_of(project, name),
        replica=replica,
        series=names,
        since=start,
        until=end,
        step=chosen,
    )
