"""The SDK's batch jobs (issue 13): upload a JSONL file, run it through an endpoint, watch
it, read its output. A mixin of `PodiumClient` (`upload_file`, `create_job`, `job`, `jobs`)
and the `Job` handle it returns.

    job = podium.create_job("embedder", input="data.jsonl", concurrency=16)
    job.wait(progress=True)          # a plain progress line on stderr
    rows = job.output()              # [{"line", "status", "status_code", "result", "error"}]

The SDK imports only httpx, pydantic and `podium.core`: the progress shown by `wait` is
one plain line rewritten on stderr (or a callback of yours), not a progress-bar library.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from podium.client._access import project_params
from podium.core.errors import Invalid, Unavailable
from podium.core.job_schemas import FileOut, JobOut
from podium.core.tasks import JOB_ENDED

M = TypeVar("M", bound=BaseModel)
ProgressCallback = Callable[[JobOut], None]


class JobMethods:
    """Needs `_request` and `_parse`."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def _parse(self, response: httpx.Response, cls: type[M]) -> M: ...

    def upload_file(self, path: str | Path, *, project: str | None = None) -> FileOut:
        """Upload a JSONL file (one JSON object a line) for a job; streamed from disk."""
        source = Path(path)
        with source.open("rb") as handle:
            response = self._request(
                "POST",
                "/files",
                params=project_params(project),
                files={"file": (source.name, handle, "application/jsonl")},
                data={"purpose": "batch"},
            )
        return self._parse(response, FileOut)

    def file_content(self, file_id: str) -> bytes:
        return self._request("GET", f"/files/{quote(file_id, safe='')}/content").content

    def create_job(
        self,
        endpoint: str,
        input: str | Path,
        *,
        path: str = "/",
        concurrency: int = 8,
        method: str = "POST",
        project: str | None = None,
    ) -> Job:
        """Run every line of `input` (a local file, uploaded first, or a file id) through
        the endpoint at `path`, at most `concurrency` lines at once."""
        file_id = str(input)
        if isinstance(input, Path) or not file_id.startswith("file_") or Path(file_id).exists():
            file_id = self.upload_file(input, project=project).id
        body = {
            "endpoint": endpoint,
            "input_file": file_id,
            "path": path,
            "method": method,
            "concurrency": concurrency,
        }
        response = self._request("POST", "/jobs", json=body, params=project_params(project))
        return Job(self, self._parse(response, JobOut))

    def job(self, job_id: str) -> Job:
        return Job(self, self._job_info(job_id))

    def jobs(
        self, endpoint: str | None = None, *, project: str | None = None, limit: int = 50
    ) -> list[JobOut]:
        """Jobs, newest first (of every project the token may invoke, unless `project`)."""
        params: dict[str, Any] = {"limit": limit}
        if endpoint is not None:
            params["endpoint"] = endpoint
        if project is not None:
            params["project"] = project
        response = self._request("GET", "/jobs", params=params)
        try:
            return [JobOut.model_validate(x) for x in response.json()["items"]]
        except (ValueError, KeyError, TypeError) as e:
            raise Unavailable(f"unexpected answer to GET /api/v1/jobs: {e}") from e

    def cancel_job(self, job_id: str) -> JobOut:
        return self._parse(self._request("POST", f"/jobs/{quote(job_id, safe='')}/cancel"), JobOut)

    def _job_info(self, job_id: str) -> JobOut:
        return self._parse(self._request("GET", f"/jobs/{quote(job_id, safe='')}"), JobOut)


class Job:
    """A batch job on the server: `refresh()`, `wait()`, `cancel()`, `output()`."""

    def __init__(self, client: JobMethods, info: JobOut) -> None:
        self._client = client
        self.info = info

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def done(self) -> bool:
        return self.info.status in JOB_ENDED

    def __repr__(self) -> str:
        i = self.info
        return f"Job({i.id!r}, {i.status.value}, {i.lines_done}/{i.lines_total} lines)"

    def refresh(self) -> JobOut:
        self.info = self._client._job_info(self.id)
        return self.info

    def cancel(self) -> JobOut:
        """Ask the server to cancel it (`cancelling`; `wait()` for `cancelled`)."""
        self.info = self._client.cancel_job(self.id)
        return self.info

    def wait(
        self,
        progress: bool | ProgressCallback = False,
        timeout: float | None = None,
        poll_s: float = 0.5,
    ) -> JobOut:
        """Poll until the job ended (completed, cancelled or failed); returns it.

        `progress=True` rewrites one line on stderr (done/total, failed, rate, ETA); a
        callable is called with each poll's `JobOut` instead. `TimeoutError` after
        `timeout` seconds (None: no limit); the job goes on on the server."""
        deadline = None if timeout is None else time.monotonic() + timeout
        show: ProgressCallback | None
        show = _print_progress if progress is True else (progress or None)
        while True:
            info = self.refresh()
            if show is not None:
                show(info)
            if self.done:
                if progress is True:
                    sys.stderr.write("\n")
                return info
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} is still {info.status.value} after {timeout}s")
            time.sleep(poll_s)

    def output(self) -> list[dict[str, Any]]:
        """The output lines (one per input line, in input order), once the job ended."""
        if self.info.output_file is None:
            self.refresh()
        if self.info.output_file is None:
            raise Invalid(
                f"job {self.id} has no output yet (it is {self.info.status.value})",
                field="output_file",
            )
        data = self._client.file_content(self.info.output_file)
        return [json.loads(line) for line in data.splitlines() if line.strip()]


def progress_line(info: JobOut) -> str:
    """`job_…: 120/5000 lines (3 failed) 41.2/s ETA 118s [in_progress]`."""
    rate = "" if info.rate_per_s is None else f" {info.rate_per_s:.1f}/s"
    eta = "" if info.eta_s is None else f" ETA {info.eta_s:.0f}s"
    return (
        f"{info.id}: {info.lines_done}/{info.lines_total} lines ({info.lines_failed} failed)"
        f"{rate}{eta} [{info.status.value}]"
    )


def _print_progress(info: JobOut) -> None:
    sys.stderr.write("\r" + progress_line(info).ljust(79))
    sys.stderr.flush()
