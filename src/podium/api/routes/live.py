"""`GET /api/v1/live`: what the gateway counts right now, per endpoint and replica
(`podium top` polls it; `api/services/live.py` builds it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from podium.api.access import From, needs, readable
from podium.api.deps import CallerDep, CtxDep
from podium.api.problems import responses
from podium.api.routes.params import SomeProjectDep, key_of
from podium.api.services import live
from podium.core.access import DEFAULT_PROJECT, Scope
from podium.core.errors import Forbidden, Unavailable
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.live_schemas import LiveView

router = APIRouter(tags=["observe"], responses=responses(403, 422))

NO_GATEWAY = (
    "live figures need the embedded gateway: this server runs none (start `podium up`, or "
    "a server with the gateway role)"
)


@router.get(
    "/live",
    response_model=LiveView,
    responses=responses(404, 503),
    dependencies=[needs(Scope.READ, From.ANY)],
)
async def get_live(
    ctx: CtxDep,
    caller: CallerDep,
    project: SomeProjectDep,
    name: Annotated[
        str | None,
        Query(
            description=f"only this endpoint (of `project`, `default` when absent); {NAME_RULE}",
            max_length=63,
            json_schema_extra={"pattern": NAME_RE.pattern},
        ),
    ] = None,
) -> LiveView:
    """The gateway's cumulative counts now (requests, answers by status class, latency
    buckets, bytes), in flight and held, ready/desired replicas and the newest CPU/memory
    point, for each endpoint of `project` (every project the token may read when absent),
    each with its replicas; and the request records' buffer (offered, dropped, buffered).
    Counts only grow: take the difference of two answers for rates and percentiles.
    503 when this server has no gateway."""
    source = ctx.live
    if source is None:
        raise Unavailable(NO_GATEWAY, field="live")
    projects = readable(caller)
    key: str | None = None
    if name is not None:
        project = project or DEFAULT_PROJECT
        if not caller.may(Scope.READ, project):
            raise Forbidden(
                f"token {caller.name!r} ({caller.token_id}) lacks scope 'read' on project "
                f"{project!r}",
                field="project",
            )
        key = key_of(project, name)
    if project is not None:
        projects = frozenset({project})
    return await run_in_threadpool(
        live.live_view, ctx.db, ctx.settings, source, ctx.routing, projects=projects, key=key
    )
