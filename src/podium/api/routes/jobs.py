"""Batch jobs (issue 13): every line of an uploaded JSONL file through an endpoint.

    POST /jobs              {endpoint, input_file, path, method, concurrency} → JobOut (201)
    GET  /jobs/{id}         → JobOut (progress: lines done/failed, rate, ETA)
    GET  /jobs?endpoint=&limit=   → {"items": [JobOut]} newest first
    POST /jobs/{id}/cancel  → JobOut (`cancelling`; the runner ends it)

Scope `invoke` on the job's project (`?project=`, default `default`, when creating). The
job runner (`server/jobs.py`) does the work; these routes only read and write rows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from podium.api.access import From, needs
from podium.api.deps import CallerDep, CtxDep
from podium.api.problems import responses
from podium.api.routes.files import job_service
from podium.api.routes.params import ProjectDep, SomeProjectDep
from podium.api.services.jobs import MAX_CONCURRENCY, MIN_CONCURRENCY, job_out
from podium.core.access import Scope
from podium.core.ids import NAME_RE
from podium.core.job_schemas import JobOut
from podium.store.jobs import PODIUM

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=responses(401, 403, 404, 422))

JobIdPath = Annotated[str, Path(max_length=32, pattern=r"^job_[0-9a-f]{1,28}$")]


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(max_length=63, pattern=NAME_RE.pattern, description="its name")
    input_file: str = Field(max_length=32, description="a file uploaded with purpose batch")
    path: str = Field(
        "/",
        max_length=2048,
        description="the replica path of each line (the built-in runtimes predict on /)",
    )
    method: Literal["POST", "PUT"] = "POST"
    concurrency: int = Field(8, ge=MIN_CONCURRENCY, le=MAX_CONCURRENCY)


class JobPage(BaseModel):
    items: list[JobOut]


@router.post("", status_code=201, response_model=JobOut, dependencies=[needs(Scope.INVOKE)])
def create_job(body: JobIn, project: ProjectDep, ctx: CtxDep, caller: CallerDep) -> JobOut:
    """Run every line of `input_file` through the endpoint, `concurrency` at a time."""
    service = job_service(ctx)
    job = service.create(
        project=project,
        endpoint=body.endpoint,
        input_file=body.input_file,
        path=body.path,
        method=body.method,
        concurrency=body.concurrency,
        caller=caller,
    )
    return job_out(*service.get(job.id, caller))


@router.get("/{job_id}", response_model=JobOut, dependencies=[needs(Scope.INVOKE, From.ANY)])
def get_job(job_id: JobIdPath, ctx: CtxDep, caller: CallerDep) -> JobOut:
    return job_out(*job_service(ctx).get(job_id, caller))


@router.get("", response_model=JobPage, dependencies=[needs(Scope.INVOKE, From.ANY)])
def list_jobs(
    ctx: CtxDep,
    caller: CallerDep,
    project: SomeProjectDep,
    endpoint: Annotated[str | None, Query(max_length=63, pattern=NAME_RE.pattern)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobPage:
    """Jobs newest first (of the projects the token may invoke, when no project is named)."""
    listed = job_service(ctx).list(
        caller, project=project, endpoint=endpoint, kind=PODIUM, limit=limit
    )
    return JobPage(items=[job_out(j, p) for j, p in listed])


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses=responses(409),
    dependencies=[needs(Scope.INVOKE, From.ANY)],
)
def cancel_job(job_id: JobIdPath, ctx: CtxDep, caller: CallerDep) -> JobOut:
    return job_out(*job_service(ctx).cancel(job_id, caller))
