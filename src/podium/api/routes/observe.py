"""What happened to an endpoint: events, revisions, replica logs, a replica's metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from podium.api.access import needs
from podium.api.deps import ApiContext, CtxDep, UowDep
from podium.api.problems import responses
from podium.api.routes.params import ProjectDep, key_of
from podium.api.services import logs, replica_metrics, sse, views
from podium.core.access import Scope
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.schemas import EventList, LogList, RevisionPublic

router = APIRouter(prefix="/endpoints", tags=["endpoints"], responses=responses(403, 422))

EndpointName = Annotated[  # the pattern is documented; a name that cannot exist is a 404
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]

_FOLLOW = {
    "description": (
        "with follow=true and `Accept: text/event-stream`: Server-Sent Events, one "
        '`event: line` per log line (`data: {"replica": ID, "line": TEXT}`, numbered by '
        "`id:`), a `: heartbeat` comment every 10 s while no line comes; a reconnect with "
        "`Last-Event-ID` goes on from now without the tail again, numbering on. With "
        "follow=true and any other Accept: `[replica-id] line` text lines as they are written"
    ),
    "content": {
        "text/event-stream": {"schema": {"type": "string"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}


@router.get(
    "/{name}/events",
    response_model=EventList,
    responses=responses(404),
    dependencies=[needs(Scope.READ)],
)
def list_events(
    name: EndpointName,
    project: ProjectDep,
    uow: UowDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="events with a larger id")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    newest: Annotated[
        bool, Query(description="the last `limit` events after `after` (still oldest first)")
    ] = False,
) -> EventList:
    key = key_of(project, name)
    uow.endpoints.get(key)
    events = uow.events.list(key, after_id=after, limit=limit, newest=newest)
    return EventList(items=[views.event(e) for e in events])


@router.get(
    "/{name}/revisions",
    response_model=list[RevisionPublic],
    responses=responses(404),
    dependencies=[needs(Scope.READ)],
)
def list_revisions(name: EndpointName, project: ProjectDep, uow: UowDep) -> list[RevisionPublic]:
    return [views.revision(r) for r in uow.endpoints.revisions(key_of(project, name))]


@router.get(
    "/{name}/logs",
    response_model=LogList,
    responses={**responses(404), 200: _FOLLOW},
    dependencies=[needs(Scope.READ)],
)
async def get_logs(
    name: EndpointName,
    project: ProjectDep,
    request: Request,
    ctx: CtxDep,
    tail: Annotated[int, Query(ge=0, le=100_000, description="lines per replica")] = 200,
    replica: Annotated[str | None, Query(max_length=128)] = None,
    follow: bool = False,
    last_event_id: Annotated[
        str | None,
        Header(
            max_length=19,
            pattern=r"^[0-9]+$",
            description="the last event an event stream received (a reconnect)",
        ),
    ] = None,
) -> LogList | StreamingResponse:
    """Each replica's last `tail` lines, replica after replica; with `follow=true` a
    stream that goes on with new lines until the client disconnects: Server-Sent Events
    for `Accept: text/event-stream`, else text."""
    name = key_of(project, name)
    chosen = await run_in_threadpool(_replicas, ctx, name, replica)
    mask = await run_in_threadpool(logs.secret_mask, ctx.db, ctx.settings.secret_key_path, project)
    if not follow:
        items = await run_in_threadpool(logs.recent, ctx.logs, chosen, tail, mask)
        return LogList(items=items, replicas=[r.public() for r in chosen])
    if sse.wants_events(request.headers.get("accept")):
        # A reconnect: the lines before it were seen, so no tail again (lines written
        # while it was away are not replayed: the backend's followers have no offsets).
        events = logs.follow_events(
            ctx.db,
            ctx.logs,
            name,
            chosen,
            tail=0 if last_event_id is not None else tail,
            poll_s=ctx.log_poll_s,
            only=replica,
            disconnected=request.is_disconnected,
            mask=mask,
            after_id=int(last_event_id or 0),
        )
        return StreamingResponse(events, media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)
    stream = logs.follow(
        ctx.db,
        ctx.logs,
        name,
        chosen,
        tail=tail,
        poll_s=ctx.log_poll_s,
        only=replica,
        disconnected=request.is_disconnected,
        mask=mask,
    )
    return StreamingResponse(stream, media_type="text/plain; charset=utf-8")


_METRICS = {
    "description": "the replica's Prometheus metrics, as the replica gave them",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


@router.get(
    "/{name}/replicas/{replica_id}/metrics",
    response_class=Response,
    responses={**responses(404, 503), 200: _METRICS},
    dependencies=[needs(Scope.READ)],
)
async def get_replica_metrics(
    name: EndpointName,
    replica_id: Annotated[str, Path(max_length=128)],
    project: ProjectDep,
    ctx: CtxDep,
) -> Response:
    """One replica's Prometheus metrics (its own `/metrics`, which the gateway does not
    serve), fetched from the replica now; 503 if it does not answer in time."""
    replica = await run_in_threadpool(_replica, ctx, key_of(project, name), replica_id)
    got = await replica_metrics.fetch(replica, ctx.replica_timeout_s)
    return Response(got.body, media_type=got.content_type)


def _replica(ctx: ApiContext, name: str, replica_id: str) -> replica_metrics.ReplicaAddress:
    with ctx.db.unit_of_work(read_only=True) as uow:
        return replica_metrics.find(uow, name, replica_id)


def _replicas(ctx: ApiContext, name: str, replica: str | None) -> list[logs.LoggedReplica]:
    """The endpoint's replicas with logs (running, and exited ones whose log is kept)."""
    with ctx.db.unit_of_work(read_only=True) as uow:
        uow.endpoints.get(name)
        running = uow.replicas.list(endpoint=name)
    return logs.pick(logs.known(running, ctx.logs.kept_logs(name)), replica)
