"""The file store over HTTP (issue 13): job inputs are uploaded here, outputs read here.

    POST   /files              multipart `file` (+ `purpose=batch`), streamed to disk,
                               at most `PODIUM_MAX_FILE_BYTES`          → FileOut (201)
    GET    /files/{id}         → FileOut
    GET    /files/{id}/content → the bytes
    DELETE /files/{id}         → 204

Scope `invoke` on the file's project (`?project=`, default `default`, when uploading).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Response, UploadFile
from fastapi.responses import StreamingResponse

from podium.api.access import From, needs
from podium.api.deps import ApiContext, CallerDep, CtxDep
from podium.api.problems import responses
from podium.api.routes.params import ProjectDep
from podium.api.services.jobs import JobService, file_out
from podium.core.access import Scope
from podium.core.errors import Invalid
from podium.core.job_schemas import FileOut
from podium.core.tasks import FilePurpose
from podium.store.files import FileStore

router = APIRouter(prefix="/files", tags=["files"], responses=responses(401, 403, 404, 422))

FileIdPath = Annotated[str, Path(max_length=32, pattern=r"^file_[0-9a-f]{1,27}$")]


def job_service(ctx: ApiContext) -> JobService:
    return JobService(ctx.db, FileStore(ctx.settings.files_dir), ctx.settings.tasks.max_file_bytes)


@router.post(
    "",
    status_code=201,
    response_model=FileOut,
    responses=responses(413),
    dependencies=[needs(Scope.INVOKE)],
)
def upload_file(
    ctx: CtxDep,
    caller: CallerDep,
    project: ProjectDep,
    file: Annotated[UploadFile, File(description="the JSONL input")],
    purpose: Annotated[str, Form(max_length=32)] = FilePurpose.BATCH.value,
) -> FileOut:
    """Upload a job's input (one JSON object a line). A plain `def`: FastAPI runs it in
    its thread pool, so the copy to disk and the store's row never block the event loop."""
    if purpose != FilePurpose.BATCH.value:
        raise Invalid(f"purpose must be 'batch', not {purpose!r}", field="purpose")
    stored = job_service(ctx).upload(
        file.file, project=project, filename=file.filename or "", caller=caller
    )
    return file_out(stored)


@router.get("/{file_id}", response_model=FileOut, dependencies=[needs(Scope.INVOKE, From.ANY)])
def get_file(file_id: FileIdPath, ctx: CtxDep, caller: CallerDep) -> FileOut:
    return file_out(job_service(ctx).get_file(file_id, caller))


@router.get(
    "/{file_id}/content",
    response_class=StreamingResponse,
    dependencies=[needs(Scope.INVOKE, From.ANY)],
)
def file_content(file_id: FileIdPath, ctx: CtxDep, caller: CallerDep) -> StreamingResponse:
    """The file's bytes, streamed."""
    service = job_service(ctx)
    found = service.get_file(file_id, caller)
    chunks = service.files.iter_bytes(file_id)
    first = next(chunks, b"")  # a missing file is a 404 here, not a cut stream

    def rest() -> Iterator[bytes]:
        yield first
        yield from chunks

    return StreamingResponse(
        rest(),
        media_type=found.content_type,
        headers={"content-length": str(found.bytes)},
    )


@router.delete("/{file_id}", status_code=204, dependencies=[needs(Scope.INVOKE, From.ANY)])
def delete_file(file_id: FileIdPath, ctx: CtxDep, caller: CallerDep) -> Response:
    job_service(ctx).delete_file(file_id, caller)
    return Response(status_code=204)
