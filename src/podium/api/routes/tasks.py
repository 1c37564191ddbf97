"""Async tasks (issue 13): one task, its result, its cancel, and an endpoint's task list.

Tasks are created by the gateway (`POST /endpoints/{name}/async/…`); here they are read.
Every route needs scope `invoke` on the task's project: a result is a model's output, which
`read` does not show. A task is found by its id before its project is known, so the by-id
routes let any token holding `invoke` (on some project) through the first check and then
check the task's own project (403 naming it); ids are 96 random bits, so a 403 tells a
stranger nothing a 404 would hide.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from podium.api import audit
from podium.api.access import From, needs
from podium.api.deps import CtxDep, get_caller
from podium.api.problems import responses
from podium.api.routes.params import ProjectDep, key_of
from podium.api.services.tasks import has_result, task_out
from podium.core.access import Scope
from podium.core.errors import Gone, NotFound
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.task_schemas import TaskOut, TaskPage
from podium.core.tasks import TaskStatus
from podium.store.files import FileStore
from podium.store.task_records import TaskView

router = APIRouter(tags=["tasks"], responses=responses(401, 403, 422))

DEFAULT_PAGE, MAX_PAGE = 50, 500
_ID_RE = r"^task_[0-9a-f]{1,64}$"
TaskIdPath = Annotated[str, Path(alias="id", max_length=69, description="a task id (task_…)")]
EndpointName = Annotated[
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]


def _load(request: Request, ctx: CtxDep, task_id: str) -> TaskView:
    """The task, if the caller holds `invoke` on its project; 404 otherwise, as for a task
    that does not exist (files and jobs alike: another project's ids and names do not
    leak)."""
    if not re.match(_ID_RE, task_id):
        raise NotFound(f"task {task_id!r} not found", field="task_id")
    with ctx.db.unit_of_work(read_only=True) as uow:
        task = uow.tasks.get(task_id)
    request.scope[audit.PROJECT_KEY] = task.project
    caller = get_caller(request, ctx)
    if not caller.may(Scope.INVOKE, task.project):
        raise NotFound(f"task {task_id!r} not found", field="task_id")
    return task


def _full(ctx: CtxDep, task_id: str) -> TaskOut:
    with ctx.db.unit_of_work(read_only=True) as uow:
        task = uow.tasks.get(task_id)
        attempts = uow.tasks.attempts(task_id)
        position = uow.task_views.position(task)
    return task_out(task, position=position, attempts=attempts)


@router.get(
    "/tasks/{id}",
    response_model=TaskOut,
    responses=responses(404),
    dependencies=[needs(Scope.INVOKE, From.NONE)],
)
def get_task(task_id: TaskIdPath, request: Request, ctx: CtxDep) -> TaskOut:
    """The task: its state, its result when inline JSON, every attempt and its reason."""
    _load(request, ctx, task_id)
    return _full(ctx, task_id)


@router.delete(
    "/tasks/{id}",
    response_model=TaskOut,
    responses=responses(404, 409),
    dependencies=[needs(Scope.INVOKE, From.NONE)],
)
def cancel_task(task_id: TaskIdPath, request: Request, ctx: CtxDep) -> TaskOut:
    """Cancel a pending or running task (a running call is dropped by its dispatcher);
    409 when the task has ended."""
    _load(request, ctx, task_id)
    with ctx.db.unit_of_work() as uow:
        uow.task_views.cancel(task_id)
    return _full(ctx, task_id)


@router.get(
    "/tasks/{id}/result",
    responses={
        **responses(404, 410),
        200: {"description": "the result's bytes, with its content type"},
    },
    dependencies=[needs(Scope.INVOKE, From.NONE)],
)
def get_result(task_id: TaskIdPath, request: Request, ctx: CtxDep) -> Response:
    """The task's result as the replica answered it (its content type; the replica's
    status in `X-Podium-Result-Status`). 404 while there is none, 410 once expired."""
    task = _load(request, ctx, task_id)
    if task.status is TaskStatus.EXPIRED:
        raise Gone(f"the result of task {task_id} has expired", field="task_id")
    if not has_result(task):
        raise NotFound(f"task {task_id} has no result ({task.status.value})", field="result")
    headers = {}
    if task.result_status is not None:
        headers["X-Podium-Result-Status"] = str(task.result_status)
    media_type = task.result_type or "application/octet-stream"
    if task.result is not None:
        return Response(task.result, media_type=media_type, headers=headers)
    # A result too large (or not JSON) to keep inline is a file of the file store.
    assert task.result_file is not None
    chunks = FileStore(ctx.settings.files_dir).iter_bytes(task.result_file)
    first = next(chunks, b"")  # a missing file is a 404 here, not a cut stream

    def rest() -> Iterator[bytes]:
        yield first
        yield from chunks

    return StreamingResponse(rest(), media_type=media_type, headers=headers)


@router.get(
    "/endpoints/{name}/tasks",
    response_model=TaskPage,
    responses=responses(404),
    dependencies=[needs(Scope.INVOKE)],
)
def list_tasks(
    name: EndpointName,
    project: ProjectDep,
    ctx: CtxDep,
    status: Annotated[TaskStatus | None, Query(description="only tasks in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[
        str | None,
        Query(max_length=19, pattern=r"^[0-9]{1,19}$", description="next_cursor of the last page"),
    ] = None,
) -> TaskPage:
    """The endpoint's tasks, newest first, without results and attempts (`GET
    /tasks/{id}` has them); only those created since the endpoint was."""
    key = key_of(project, name)
    with ctx.db.unit_of_work(read_only=True) as uow:
        born_at = uow.endpoints.get(key).created_at.timestamp()
        page = uow.task_views.list_page(
            key,
            status=status,
            before=None if cursor is None else int(cursor),
            limit=limit,
            born_at=born_at,
        )
        positions = uow.task_views.positions(page)
    items = [task_out(t, position=positions.get(t.id), full=False) for t in page]
    more = len(page) == limit
    return TaskPage(items=items, next_cursor=str(page[-1].seq) if more and page else None)
