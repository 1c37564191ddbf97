"""The shapes of files and batch jobs (issue 13), shared by the API that answers them and
the SDK that reads them."""

from __future__ import annotations

from pydantic import BaseModel

from podium.core.tasks import JobStatus


class FileOut(BaseModel):
    """A file in the file store (`/api/v1/files/{id}`)."""

    id: str
    filename: str
    bytes: int
    purpose: str
    sha256: str
    created_at: float


class JobOut(BaseModel):
    """A batch job and its progress (`/api/v1/jobs/{id}`): lines done are lines whose task
    ended; `rate_per_s` is lines done per second since it started, `eta_s` what is left at
    that rate (None once ended)."""

    id: str
    endpoint: str | None
    project: str
    status: JobStatus
    path: str
    concurrency: int
    input_file: str
    output_file: str | None
    error_file: str | None
    lines_total: int
    lines_done: int
    lines_succeeded: int
    lines_failed: int
    lines_pending: int
    rate_per_s: float | None
    eta_s: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
