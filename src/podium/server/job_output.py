"""A job's output file (issue 13), written once every line has ended (or it was cancelled).

Podium jobs: one line per input line, in input order:
    {"line": i, "status": "succeeded"|"failed"|"cancelled"|"expired", "status_code": int|null,
     "result": <JSON or string>|null, "error": str|null}
(`expired`: the line ran, but its task's result was swept before the output was written.)
OpenAI batches: the output file holds the lines that got an answer, OpenAI-shaped
    {"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error": null}
and the error file the lines that did not (bad lines, dead-lettered, cancelled, expired)
    {"id", "custom_id", "response": null, "error": {"code", "message"}}.

Nothing here trusts the input or the results to be small or shallow: the input is re-read
with the runner's bounded line reader, and JSON is depth-checked before it is parsed
(`core.jsondepth`), so a pathological line or answer can never make writing fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from podium.core.jsondepth import too_deep
from podium.core.settings import GatewaySettings
from podium.core.tasks import FilePurpose, TaskStatus
from podium.store.db import Database
from podium.store.files import FileStore, LongLine
from podium.store.jobs import OPENAI, JobView, LineResult, iter_line_results

ResultBody = Any
EXPIRED_ERROR = "the result of this line expired before the job's output was written"


def result_value(store: FileStore, r: LineResult) -> ResultBody:
    """A task's result as JSON when it is JSON, else as text (None: no result)."""
    data = r.result
    if data is None and r.result_file is not None:
        try:
            data = store.read_bytes(r.result_file)
        except Exception:
            data = None
    if data is None:
        return None
    if too_deep(data):  # a replica's answer nested too deep to parse safely: as text
        return data.decode("utf-8", "replace")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return data.decode("utf-8", "replace")


def _status(r: LineResult | None) -> str:
    if r is None or r.status in (TaskStatus.CANCELLED, TaskStatus.PENDING, TaskStatus.RUNNING):
        return "cancelled"
    if r.status is TaskStatus.EXPIRED:
        return "expired"
    return "succeeded" if r.status is TaskStatus.SUCCEEDED else "failed"


def podium_lines(db: Database, store: FileStore, job: JobView) -> Iterator[bytes]:
    for i, r in enumerate(iter_line_results(db, job.id, job.lines_total)):
        status = _status(r)
        error = None
        if status == "cancelled":
            error = "the job was cancelled before this line ran"
        elif status == "expired":
            error = EXPIRED_ERROR
        elif r is not None and status == "failed":
            error = r.error or f"the replica answered {r.result_status}"
        doc = {
            "line": i,
            "status": status,
            "status_code": None if r is None else r.result_status,
            "result": None if r is None else result_value(store, r),
            "error": error,
        }
        yield json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def openai_lines(
    db: Database,
    store: FileStore,
    job: JobView,
    errors: bool,
    max_line: int = GatewaySettings().max_body_bytes,
) -> Iterator[bytes]:
    """The output lines (`errors` False: the answered ones) or the error lines of an OpenAI
    batch, in input order; streamed (one pass per file), never held whole in memory."""
    custom_ids = _custom_ids(store, job.input_file, max_line)
    for r, custom_id in zip(
        iter_line_results(db, job.id, job.lines_total), custom_ids, strict=False
    ):
        line_id = f"batch_req_{r.task_id[5:]}" if r is not None else None
        status = _status(r)
        answered = (
            r is not None and r.result_status is not None and status in ("succeeded", "failed")
        )
        if not errors and answered and r is not None:
            doc: dict[str, Any] = {
                "id": line_id,
                "custom_id": custom_id,
                "response": {
                    "status_code": r.result_status,
                    "request_id": r.task_id,
                    "body": result_value(store, r),
                },
                "error": None,
            }
            yield json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        elif errors and not answered:
            if status == "cancelled":
                code, message = "batch_cancelled", "the batch was cancelled before this line ran"
            elif status == "expired":
                code, message = "batch_expired", EXPIRED_ERROR
            else:
                code = "request_failed"
                message = (r.error if r is not None else None) or "the request failed"
            doc = {
                "id": line_id,
                "custom_id": custom_id,
                "response": None,
                "error": {"code": code, "message": message},
            }
            yield json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def write_output(
    db: Database, store: FileStore, job: JobView, max_line: int = GatewaySettings().max_body_bytes
) -> tuple[str, str | None]:
    """Write the job's output (and, for OpenAI batches, error) file; returns their ids.
    `max_line`: the runner's line bound (lines past it are counted, never read)."""
    if job.kind != OPENAI:
        return _save(db, store, job, "output", podium_lines(db, store, job)), None
    output = _save(
        db, store, job, "output", openai_lines(db, store, job, errors=False, max_line=max_line)
    )
    errors = openai_lines(db, store, job, errors=True, max_line=max_line)
    return output, _save(db, store, job, "error", errors)


def _save(db: Database, store: FileStore, job: JobView, name: str, lines: Iterator[bytes]) -> str:
    written = store.write(lines)
    with db.unit_of_work() as uow:
        uow.files.create(
            written,
            project=job.project,
            filename=f"{job.id}_{name}.jsonl",
            purpose=FilePurpose.BATCH_OUTPUT,
            content_type="application/jsonl",
            token_id=job.token_id,
        )
    return written.id


def _custom_ids(store: FileStore, input_file: str, max_line: int) -> Iterator[str | None]:
    """Each line's `custom_id` (None when it has none), counted exactly as the runner
    counted the lines (the same bounded reader: blank lines skipped, long ones kept)."""
    for raw in store.iter_bounded_lines(input_file, max_line):
        if isinstance(raw, LongLine):
            yield None
            continue
        if not raw.strip():
            continue
        if too_deep(raw):
            yield None
            continue
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            yield None
            continue
        custom_id = doc.get("custom_id") if isinstance(doc, dict) else None
        yield custom_id if isinstance(custom_id, str) else None
