"""Files and batch jobs for the API routes (`routes/files.py`, `routes/jobs.py`,
`routes/openai_batches.py`): upload, create, read, cancel, and the views they answer.

A file or job is visible to a caller holding `invoke` on its project (they are model
inputs and outputs: `read` is not enough); to anyone else it does not exist (404), so ids
do not leak across projects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import IO

from podium.core.access import Principal, Scope, endpoint_key, split_key
from podium.core.errors import Invalid, NotFound
from podium.core.job_schemas import FileOut, JobOut
from podium.core.replica_paths import internal_target
from podium.core.tasks import JOB_ENDED, FilePurpose, JobStatus
from podium.store import Database
from podium.store.files import FileStore, FileView
from podium.store.jobs import PODIUM, JobView, NewJob, Progress

MIN_CONCURRENCY, MAX_CONCURRENCY = 1, 256
MAX_PATH = 2048


def file_out(f: FileView) -> FileOut:
    return FileOut(
        id=f.id,
        filename=f.filename,
        bytes=f.bytes,
        purpose=f.purpose.value,
        sha256=f.sha256,
        created_at=f.created_at,
    )


def job_out(job: JobView, p: Progress, now: float | None = None) -> JobOut:
    """The job with its progress: lines done (ended tasks), rate since it started, ETA."""
    now = time.time() if now is None else now
    done = p.ended
    rate = eta = None
    if job.started_at is not None:
        until = job.finished_at if job.finished_at is not None else now
        elapsed = until - job.started_at
        rate = done / elapsed if elapsed > 0 else None
        if job.status not in JOB_ENDED and rate:
            eta = max(job.lines_total - done, 0) / rate
    return JobOut(
        id=job.id,
        endpoint=None if job.endpoint is None else split_key(job.endpoint)[1],
        project=job.project,
        status=job.status,
        path=job.path,
        concurrency=job.concurrency,
        input_file=job.input_file,
        output_file=job.output_file,
        error_file=job.error_file,
        lines_total=job.lines_total,
        lines_done=done,
        lines_succeeded=p.succeeded,
        lines_failed=p.failed + p.expired,
        lines_pending=max(job.lines_total - done, 0),
        rate_per_s=rate,
        eta_s=eta,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
    )


@dataclass(frozen=True)
class JobService:
    db: Database
    files: FileStore
    max_file_bytes: int

    # ------------------------------------------------------------------ files

    def upload(
        self,
        source: IO[bytes],
        *,
        project: str,
        filename: str,
        caller: Principal,
    ) -> FileView:
        """Copy an upload (spooled by the web server) into the store, then add its row.
        Blocking (disk writes, an fsync, a store transaction): the routes run it in a worker
        thread, never on the event loop, which would stall every other request meanwhile."""
        written = self.files.write_from(source, self.max_file_bytes)
        with self.db.unit_of_work() as uow:
            return uow.files.create(
                written,
                project=project,
                filename=filename or "upload.jsonl",
                purpose=FilePurpose.BATCH,
                content_type="application/jsonl",
                token_id=_token(caller),
            )

    def get_file(self, file_id: str, caller: Principal) -> FileView:
        with self.db.unit_of_work(read_only=True) as uow:
            found = uow.files.get(file_id)
        if not caller.may(Scope.INVOKE, found.project):
            raise NotFound(f"file {file_id!r} not found", field="file_id")
        return found

    def delete_file(self, file_id: str, caller: Principal) -> None:
        self.get_file(file_id, caller)
        with self.db.unit_of_work() as uow:
            uow.files.delete(file_id)
        self.files.delete(file_id)

    # ------------------------------------------------------------------ jobs

    def create(
        self,
        *,
        project: str,
        endpoint: str | None,
        input_file: str,
        path: str,
        method: str,
        concurrency: int,
        caller: Principal,
        kind: str = PODIUM,
        labels: dict[str, str] | None = None,
    ) -> JobView:
        if not MIN_CONCURRENCY <= concurrency <= MAX_CONCURRENCY:
            raise Invalid(
                f"concurrency must be {MIN_CONCURRENCY} to {MAX_CONCURRENCY}, not {concurrency}",
                field="concurrency",
            )
        if not path.startswith("/") or len(path) > MAX_PATH:
            raise Invalid(
                f"path must start with / and be at most {MAX_PATH} characters", field="path"
            )
        if internal_target(path):
            raise Invalid(
                f"path {path!r} names a replica's internal route (/metrics, /health/…, "
                "/podium/…): those are for Podium alone",
                field="path",
            )
        with self.db.unit_of_work() as uow:
            key = None
            if endpoint is not None:
                key = endpoint_key(project, endpoint)
                try:
                    uow.endpoints.get(key)
                except NotFound:
                    raise NotFound(
                        f"endpoint {endpoint!r} not found in project {project!r}",
                        field="endpoint",
                    ) from None
            try:
                source = uow.files.get(input_file)
            except NotFound:
                source = None
            if source is None or not caller.may(Scope.INVOKE, source.project):
                raise NotFound(f"file {input_file!r} not found", field="input_file")
            if source.purpose is not FilePurpose.BATCH:
                raise Invalid(
                    f"file {input_file!r} has purpose {source.purpose.value!r}, not 'batch'",
                    field="input_file",
                )
            return uow.jobs.create(
                NewJob(
                    project=project,
                    endpoint=key,
                    input_file=input_file,
                    path=path,
                    method=method,
                    concurrency=concurrency,
                    kind=kind,
                    token_id=_token(caller),
                    labels=labels or {},
                )
            )

    def get(self, job_id: str, caller: Principal) -> tuple[JobView, Progress]:
        with self.db.unit_of_work(read_only=True) as uow:
            job = uow.jobs.get(job_id)
            if not caller.may(Scope.INVOKE, job.project):
                raise NotFound(f"job {job_id!r} not found", field="job_id")
            return job, uow.jobs.progress(job_id)

    def list(
        self,
        caller: Principal,
        *,
        project: str | None,
        endpoint: str | None,
        kind: str | None,
        limit: int,
        before: float | None = None,
    ) -> list[tuple[JobView, Progress]]:
        projects = caller.projects if project is None else frozenset({project})
        key = None if endpoint is None or project is None else endpoint_key(project, endpoint)
        with self.db.unit_of_work(read_only=True) as uow:
            jobs = uow.jobs.list(projects, key, kind, limit, before)
            if endpoint is not None and key is None:
                jobs = [j for j in jobs if j.endpoint and split_key(j.endpoint)[1] == endpoint]
            return [(j, uow.jobs.progress(j.id)) for j in jobs]

    def cancel(self, job_id: str, caller: Principal) -> tuple[JobView, Progress]:
        """→ `cancelling` (the runner cancels its tasks and writes the output); a job
        already cancelling is answered as it is; an ended one is a 409."""
        self.get(job_id, caller)
        with self.db.unit_of_work() as uow:
            job = uow.jobs.get(job_id)
            if job.status is not JobStatus.CANCELLING:
                job = uow.jobs.set_status(job_id, JobStatus.CANCELLING)
            return job, uow.jobs.progress(job_id)


def _token(caller: Principal) -> str | None:
    return None if caller.token_id == "-" else caller.token_id
