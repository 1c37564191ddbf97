"""OpenAI's Batch API on Podium (issue 13): `/v1/files` and `/v1/batches`, as the official
`openai` client calls them (`Authorization: Bearer <podium token>`).

    POST /v1/files                 multipart `file`, `purpose=batch`     → file object
    GET  /v1/files/{id}            → file object
    GET  /v1/files/{id}/content    → its bytes
    POST /v1/batches               {input_file_id, endpoint, completion_window, metadata}
    GET  /v1/batches/{id}          → batch object
    GET  /v1/batches?after=&limit= → {"object": "list", "data", "first_id", "last_id", "has_more"}
    POST /v1/batches/{id}/cancel   → batch object (`cancelling`)

A batch is a job of kind `openai`: each input line `{"custom_id", "method": "POST",
"url", "body": {"model": …}}` becomes a task on the endpoint `body.model` names (resolved
as the OpenAI router resolves it, for the batch's creator), at path `url`. The output file
holds the answered lines, `{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error": null}`; the error file the lines that got no answer. Errors use OpenAI's
body `{"error": {"message", "type", "param", "code"}}`, never problem+json. The files and
batches live in the caller's `default` project, or its first project by name when the
token is bound to others.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from podium.api.deps import get_caller, get_ctx
from podium.api.routes.files import job_service
from podium.api.services.jobs import job_out
from podium.core.access import DEFAULT_PROJECT, Principal, Scope
from podium.core.errors import Forbidden, Invalid, NotFound, PodiumError
from podium.core.job_schemas import JobOut
from podium.core.tasks import FilePurpose, JobStatus
from podium.store.files import FileView
from podium.store.jobs import OPENAI

router = APIRouter(include_in_schema=False)

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/completions")
WINDOW = "24h"
WINDOW_S = 86400
CONCURRENCY = 16  # lines of one batch running at once at most
MAX_METADATA = 16
MAX_BATCH_BODY = 64 * 1024
T = TypeVar("T")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error"}


def openai_error(status: int, message: str, param: str | None = None) -> JSONResponse:
    """OpenAI's error body; a 422 (Podium's `Invalid`) is OpenAI's 400."""
    status = 400 if status == 422 else status
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    code = {404: "not_found", 409: "conflict", 413: "file_too_large"}.get(status)
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


async def _caller(request: Request) -> tuple[Principal, str]:
    """The caller and the project its batches live in (module docstring). The token
    lookup may read the store: in a worker thread, off the event loop."""
    caller = await run_in_threadpool(get_caller, request, get_ctx(request))
    if caller.projects is None or DEFAULT_PROJECT in caller.projects:
        project = DEFAULT_PROJECT
    else:
        project = sorted(caller.projects)[0] if caller.projects else DEFAULT_PROJECT
    if not caller.may(Scope.INVOKE, project):
        raise Forbidden(
            f"token {caller.name!r} lacks scope 'invoke' on project {project!r}", field="scope"
        )
    return caller, project


async def _answer(work: Callable[[], Awaitable[Any]]) -> Response:
    try:
        result = await work()
    except PodiumError as e:
        return openai_error(e.status, e.message, e.field)
    return result if isinstance(result, Response) else JSONResponse(result)


def file_object(f: FileView) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": int(f.created_at),
        "filename": f.filename,
        "purpose": f.purpose.value,
        "status": "processed",
        "status_details": None,
    }


def batch_object(out: JobOut, metadata: dict[str, str]) -> dict[str, Any]:
    ended = None if out.finished_at is None else int(out.finished_at)
    errors = None
    if out.status is JobStatus.FAILED and out.error:
        errors = {
            "object": "list",
            "data": [{"code": "failed", "message": out.error, "param": None, "line": None}],
        }
    return {
        "id": out.id,
        "object": "batch",
        "endpoint": out.path,
        "errors": errors,
        "input_file_id": out.input_file,
        "completion_window": WINDOW,
        "status": out.status.value,
        "output_file_id": out.output_file,
        "error_file_id": out.error_file,
        "created_at": int(out.created_at),
        "in_progress_at": None if out.started_at is None else int(out.started_at),
        "expires_at": int(out.created_at) + WINDOW_S,
        "finalizing_at": None,
        "completed_at": ended if out.status is JobStatus.COMPLETED else None,
        "failed_at": ended if out.status is JobStatus.FAILED else None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": ended if out.status is JobStatus.CANCELLED else None,
        "request_counts": {
            "total": out.lines_total,
            "completed": out.lines_succeeded,
            "failed": out.lines_failed,
        },
        "metadata": metadata or None,
    }


# ---------------------------------------------------------------------- files


@router.post("/v1/files")
async def create_file(request: Request) -> Response:
    async def work() -> dict[str, Any]:
        caller, project = await _caller(request)
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        purpose = form.get("purpose")
        if purpose != FilePurpose.BATCH.value:
            raise Invalid(f"purpose must be 'batch', not {purpose!r}", field="purpose")
        if not isinstance(upload, StarletteUpload):
            raise Invalid("file is required (multipart form field `file`)", field="file")
        # The copy to disk (with its fsync) and the row: in a worker thread, off the loop.
        service = job_service(get_ctx(request))
        stored = await run_in_threadpool(
            lambda: service.upload(
                upload.file, project=project, filename=upload.filename or "", caller=caller
            )
        )
        return file_object(stored)

    return await _answer(work)


@router.get("/v1/files/{file_id}")
async def retrieve_file(request: Request, file_id: str) -> Response:
    async def work() -> dict[str, Any]:
        caller, _ = await _caller(request)
        found = await run_in_threadpool(job_service(get_ctx(request)).get_file, file_id, caller)
        return file_object(found)

    return await _answer(work)


@router.get("/v1/files/{file_id}/content")
async def file_content(request: Request, file_id: str) -> Response:
    async def work() -> Response:
        caller, _ = await _caller(request)
        service = job_service(get_ctx(request))
        found = await run_in_threadpool(service.get_file, file_id, caller)
        chunks = service.files.iter_bytes(file_id)
        first = await run_in_threadpool(next, chunks, b"")

        def rest() -> Any:
            yield first
            yield from chunks

        return StreamingResponse(
            rest(), media_type=found.content_type, headers={"content-length": str(found.bytes)}
        )

    return await _answer(work)


# ---------------------------------------------------------------------- batches


@router.post("/v1/batches")
async def create_batch(request: Request) -> Response:
    async def work() -> dict[str, Any]:
        caller, project = await _caller(request)
        raw = await request.body()
        if len(raw) > MAX_BATCH_BODY:
            raise Invalid(f"the body is larger than {MAX_BATCH_BODY} bytes", field="body")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise Invalid("the body must be a JSON object", field="body") from None
        if not isinstance(doc, dict):
            raise Invalid("the body must be a JSON object", field="body")
        endpoint = doc.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise Invalid(f"endpoint must be one of {', '.join(ENDPOINTS)}", field="endpoint")
        if doc.get("completion_window", WINDOW) != WINDOW:
            raise Invalid(f"completion_window must be {WINDOW!r}", field="completion_window")
        input_file = doc.get("input_file_id")
        if not isinstance(input_file, str) or len(input_file) > 32:
            raise Invalid("input_file_id must be a file id", field="input_file_id")
        metadata = _metadata(doc.get("metadata"))
        service = job_service(get_ctx(request))
        try:
            job = await run_in_threadpool(
                lambda: service.create(
                    project=project,
                    endpoint=None,
                    input_file=input_file,
                    path=str(endpoint),
                    method="POST",
                    concurrency=CONCURRENCY,
                    caller=caller,
                    kind=OPENAI,
                    labels=metadata,
                )
            )
        except PodiumError as e:
            if e.field == "input_file":
                e.field = "input_file_id"
            raise
        job_view, progress = await run_in_threadpool(service.get, job.id, caller)
        return batch_object(job_out(job_view, progress), job_view.labels)

    return await _answer(work)


def _metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if (
        not isinstance(value, dict)
        or len(value) > MAX_METADATA
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in value.items()
        )
    ):
        raise Invalid(
            f"metadata must be at most {MAX_METADATA} string pairs (keys ≤ 64, values ≤ 512)",
            field="metadata",
        )
    return dict(value)


@router.get("/v1/batches/{batch_id}")
async def retrieve_batch(request: Request, batch_id: str) -> Response:
    async def work() -> dict[str, Any]:
        caller, _ = await _caller(request)
        job, progress = await run_in_threadpool(
            job_service(get_ctx(request)).get, _batch_id(batch_id), caller
        )
        if job.kind != OPENAI:
            raise NotFound(f"batch {batch_id!r} not found", field="batch_id")
        return batch_object(job_out(job, progress), job.labels)

    return await _answer(work)


@router.get("/v1/batches")
async def list_batches(request: Request) -> Response:
    async def work() -> dict[str, Any]:
        caller, _ = await _caller(request)
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise Invalid("limit must be 1 to 100", field="limit")
        service = job_service(get_ctx(request))
        before = None
        if (after := request.query_params.get("after")) is not None:
            job, _ = await run_in_threadpool(service.get, _batch_id(after), caller)
            before = job.created_at
        listed = await run_in_threadpool(
            lambda: service.list(
                caller, project=None, endpoint=None, kind=OPENAI, limit=limit + 1, before=before
            )
        )
        data = [batch_object(job_out(j, p), j.labels) for j, p in listed[:limit]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(listed) > limit,
        }

    return await _answer(work)


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str) -> Response:
    async def work() -> dict[str, Any]:
        caller, _ = await _caller(request)
        service = job_service(get_ctx(request))
        job, _ = await run_in_threadpool(service.get, _batch_id(batch_id), caller)
        if job.kind != OPENAI:
            raise NotFound(f"batch {batch_id!r} not found", field="batch_id")
        job, progress = await run_in_threadpool(service.cancel, job.id, caller)
        return batch_object(job_out(job, progress), job.labels)

    return await _answer(work)


def _batch_id(value: str) -> str:
    if len(value) > 32:
        raise NotFound(f"batch {value!r} not found", field="batch_id")
    return value
