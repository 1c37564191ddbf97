"""The job runner (issue 13): turns a job's input lines into tasks, a few at a time, and
writes its output once they have all ended.

Each round (`run_once`), for every job not ended:

- `validating`: its input file is read once (at most `max_file_bytes`, `max_job_lines`
  non-blank lines) and counted → `in_progress` (or `failed`, naming why).
- `in_progress`: at most `concurrency` of its tasks are unfinished; the next lines are
  enqueued to fill the room (`TaskRepo.enqueue_many` with `job_id`, `line`). A line that is
  not a JSON object (or, for an OpenAI batch, not a request it can run) is stored as a task
  already `failed`, naming the line and the reason: it never runs and the job goes on.
  When every line has an ended task → `finalizing` → the output file → `completed`.
- `cancelling`: its pending and running tasks are cancelled, the output is written with
  the lines done so far (the rest `cancelled`) → `cancelled`.

Lines are bounded before anything parses them: a line longer than `max_line_bytes` (the
gateway's PODIUM_MAX_BODY_BYTES: a line is one request body) is skipped unread, and one
nesting deeper than `core.jsondepth` allows is never handed to `json.loads`; both fail
alone, naming why. Jobs are isolated from each other: a round that raises on one job is
logged and counted, and after MAX_JOB_ERRORS rounds in a row that job is failed (naming
the error) while the others carry on. A job line's task keeps the queue's longest TTL
(JOB_TASK_TTL_S): its result is read only when the whole job ends.

Everything is in the store (the next line is the tasks' highest line + 1, progress is a
GROUP BY over them), so a restarted server's runner carries on where the last one stopped
and never enqueues a line twice. The runner is one thread: the store calls block.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from podium.core.access import DEFAULT_PROJECT, Principal, Scope, endpoint_key, split_key
from podium.core.errors import NotFound, PodiumError, Unavailable
from podium.core.settings import GatewaySettings, TaskSettings
from podium.core.tasks import MAX_ERROR_CHARS, MAX_TTL_S, JobStatus
from podium.server.job_lines import MAX_LINE_ERROR, counts, line_object, openai_request
from podium.server.job_output import write_output
from podium.store.db import Database
from podium.store.files import FileStore, LongLine
from podium.store.jobs import OPENAI, JobView
from podium.store.task_records import NewTask

log = logging.getLogger("podium.jobs")
JSON_HEADERS = (("content-type", "application/json"),)
MAX_LINES_PER_ROUND = 5000  # lines one job enqueues in one round at most
MAX_JOB_ERRORS = 5  # rounds in a row that raise on one job before it is failed
# A job line's task outlives the endpoint's `result_ttl_s`: its result is only read once
# the whole job ends (into the output file), which for a 200k-line job, or one waiting on
# an endpoint scaled to zero, can be days; the longest TTL the queue allows (30 days).
JOB_TASK_TTL_S = MAX_TTL_S


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a line's task goes, or why it cannot go anywhere."""

    endpoint: str = ""
    lease_s: float = 90.0
    max_attempts: int = 3
    ttl_s: float = JOB_TASK_TTL_S
    error: str | None = None


class _Reader:
    """An open input file, positioned at the next line to enqueue (kept between rounds so
    a long input is read once, not from its start every round)."""

    def __init__(self, lines: Iterator[bytes | LongLine], position: int) -> None:
        self.lines = lines
        self.position = position


class JobRunner:
    def __init__(
        self,
        db: Database,
        files: FileStore,
        settings: TaskSettings,
        *,
        interval_s: float = 0.2,
        on_enqueued: Callable[[], None] | None = None,
        max_line_bytes: int = GatewaySettings().max_body_bytes,
        active: Callable[[], bool] | None = None,
    ) -> None:
        self._db = db
        # With several server processes (issue 16) the runner works only in the one whose
        # controller leads (`active`): two runners would read one job's input twice.
        self._active = active
        # A line longer than this (the gateway's PODIUM_MAX_BODY_BYTES: a line is one
        # request body) fails alone, and is never read into memory whole.
        self._max_line = max_line_bytes
        self._errors: dict[str, int] = {}  # job id → rounds in a row that raised
        # Called (from the runner's thread) after lines were enqueued: the server points
        # it at the dispatcher's wake, through its event loop (`call_soon_threadsafe`).
        self.on_enqueued = on_enqueued
        self._files = files
        self._settings = settings
        self._interval_s = interval_s
        self._readers: dict[str, _Reader] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the loop

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="podium-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a busy database, a lost connection: next round
                log.exception("the job runner's round failed; retrying")
                busy = False
            self._stop.wait(self._interval_s if not busy else self._interval_s / 4)

    def run_once(self) -> bool:
        """One round over every job not ended; True when something was done."""
        if self._active is not None and not self._active():
            self._readers.clear()  # the leader's runner reads on; resume from the store later
            return False
        with self._db.unit_of_work(read_only=True) as uow:
            jobs = uow.jobs.active()
        done = False
        for job in jobs:
            try:
                done = self._step(job) or done
            except Unavailable as e:  # a busy store: not this job's fault, next round
                log.warning("job %s: %s", job.id, e)
            except PodiumError as e:  # its input gone, a job moved meanwhile: next round
                log.warning("job %s: %s", job.id, e)
                self._failed_round(job, e)
            except Exception as e:  # a bug on this job's data: never stop the other jobs
                log.exception("job %s: its round failed", job.id)
                self._failed_round(job, e)
            else:
                self._errors.pop(job.id, None)
        alive = {j.id for j in jobs}
        for gone in set(self._readers) - alive:
            self._readers.pop(gone, None)
        for gone in set(self._errors) - alive:
            self._errors.pop(gone, None)
        return done

    def _failed_round(self, job: JobView, error: Exception) -> None:
        """Count a round that raised on `job`; at `MAX_JOB_ERRORS` in a row the job is
        failed (its unfinished lines cancelled), naming the error, so one job that always
        raises costs the others nothing but a log line a round, and only a few rounds."""
        count = self._errors.get(job.id, 0) + 1
        self._errors[job.id] = count
        if count < MAX_JOB_ERRORS:
            return
        reason = (
            f"the job runner failed {count} times in a row on this job "
            f"({type(error).__name__}: {str(error)[:MAX_LINE_ERROR]})"
        )[:MAX_ERROR_CHARS]
        try:
            with self._db.unit_of_work() as uow:
                uow.jobs.cancel_tasks(job.id, reason)
                uow.jobs.set_status(job.id, JobStatus.FAILED, error=reason)
        except Exception:  # the store itself is failing: try again next round
            log.exception("job %s: could not be failed", job.id)
            return
        self._errors.pop(job.id, None)
        self._readers.pop(job.id, None)
        log.error("job %s failed: %s", job.id, reason)

    def _step(self, job: JobView) -> bool:
        if job.status is JobStatus.VALIDATING:
            self._validate(job)
            return True
        if job.status is JobStatus.IN_PROGRESS:
            return self._advance(job)
        if job.status is JobStatus.FINALIZING:
            self._finish(job, JobStatus.COMPLETED)
            return True
        if job.status is JobStatus.CANCELLING:
            with self._db.unit_of_work() as uow:
                uow.jobs.cancel_tasks(job.id)
            self._finish(job, JobStatus.CANCELLED)
            return True
        return False

    # ------------------------------------------------------------------ steps

    def _validate(self, job: JobView) -> None:
        error = None
        count = 0
        try:
            with self._db.unit_of_work(read_only=True) as uow:
                size = uow.files.get(job.input_file).bytes
            if size > self._settings.max_file_bytes:
                error = (
                    f"the input file is {size} bytes; the limit is "
                    f"{self._settings.max_file_bytes} (PODIUM_MAX_FILE_BYTES)"
                )
            else:
                for raw in self._files.iter_bounded_lines(job.input_file, self._max_line):
                    if counts(raw):
                        count += 1
                        if count > self._settings.max_job_lines:
                            error = (
                                f"the input has more than {self._settings.max_job_lines} "
                                "lines (PODIUM_MAX_JOB_LINES)"
                            )
                            break
                if error is None and count == 0:
                    error = "the input file has no lines"
        except NotFound:
            error = f"the input file {job.input_file!r} is gone"
        with self._db.unit_of_work() as uow:
            if error is not None:
                uow.jobs.set_status(job.id, JobStatus.FAILED, error=error)
            else:
                uow.jobs.set_status(job.id, JobStatus.IN_PROGRESS, lines_total=count)
        log.info("job %s: %s", job.id, error or f"{count} lines, in progress")

    def _advance(self, job: JobView) -> bool:
        with self._db.unit_of_work(read_only=True) as uow:
            progress = uow.jobs.progress(job.id)
            next_line = uow.jobs.next_line(job.id)
        if next_line >= job.lines_total:
            if progress.ended >= job.lines_total:
                with self._db.unit_of_work() as uow:
                    uow.jobs.set_status(job.id, JobStatus.FINALIZING)
                return True
            return False
        room = min(job.concurrency - progress.unfinished, job.lines_total - next_line)
        if room <= 0:
            return False
        # Bad lines take no room (they never run): read on until the room is filled with
        # lines that will run, at most MAX_LINES_PER_ROUND lines a round.
        news: list[NewTask] = []
        at = next_line
        while room > 0 and at < job.lines_total and len(news) < MAX_LINES_PER_ROUND:
            batch = self._tasks(job, at, self._read(job, at, room))
            if not batch:
                break
            news += batch
            at += len(batch)
            room -= sum(1 for n in batch if n.error is None)
        with self._db.unit_of_work() as uow:
            if uow.jobs.hold(job.id) != next_line:  # another runner took these lines
                self._readers.pop(job.id, None)
                return False
            uow.tasks.enqueue_many(news)
        if self.on_enqueued is not None and any(n.error is None for n in news):
            self.on_enqueued()
        return True

    def _finish(self, job: JobView, end: JobStatus) -> None:
        output, errors = write_output(self._db, self._files, job, self._max_line)
        with self._db.unit_of_work() as uow:
            uow.jobs.set_status(job.id, end, output_file=output, error_file=errors)
        self._readers.pop(job.id, None)
        log.info("job %s %s (output %s)", job.id, end.value, output)

    # ------------------------------------------------------------------ lines

    def _read(self, job: JobView, start: int, count: int) -> list[bytes | LongLine]:
        """Non-blank lines `start` … `start + count - 1` of the job's input."""
        reader = self._readers.get(job.id)
        if reader is None or reader.position != start:
            lines = (
                raw
                for raw in self._files.iter_bounded_lines(job.input_file, self._max_line)
                if counts(raw)
            )
            for _ in range(start):
                next(lines, None)
            reader = _Reader(lines, start)
            self._readers[job.id] = reader
        out: list[bytes | LongLine] = []
        for raw in reader.lines:
            out.append(raw)
            if len(out) == count:
                break
        reader.position = start + len(out)
        return out

    def _tasks(self, job: JobView, start: int, lines: list[bytes | LongLine]) -> list[NewTask]:
        targets: dict[str, _Target] = {}
        who = self._principal(job)
        news = []
        for offset, read in enumerate(lines):
            line = start + offset
            raw = b"" if isinstance(read, LongLine) else read
            doc, why = line_object(read)
            path, body = job.path, raw
            if doc is not None and job.kind == OPENAI:
                model, path, body, why = openai_request(doc, job.path)
                if why is None:
                    if model not in targets:
                        targets[model] = self._openai_target(model, who)
                    target = targets[model]
                    why = target.error
            elif doc is not None:
                endpoint = job.endpoint or ""
                if endpoint not in targets:
                    targets[endpoint] = self._target(endpoint)
                target = targets[endpoint]
                why = target.error
            if why is not None or doc is None:
                target = _Target(endpoint=job.endpoint or "")
                error = f"line {line}: {why}"
            else:
                error = None
            news.append(
                NewTask(
                    endpoint=target.endpoint,
                    project=job.project if not target.endpoint else split_key(target.endpoint)[0],
                    method=job.method,
                    path=path,
                    body=body,
                    headers=JSON_HEADERS,
                    max_attempts=target.max_attempts,
                    lease_s=target.lease_s,
                    ttl_s=target.ttl_s,
                    token_id=job.token_id,
                    job_id=job.id,
                    line=line,
                    error=error,
                )
            )
        return news

    def _target(self, key: str) -> _Target:
        try:
            with self._db.unit_of_work(read_only=True) as uow:
                spec = uow.endpoints.get(key).spec
        except NotFound:
            return _Target(endpoint=key, error=f"endpoint {key!r} not found")
        return _Target(
            endpoint=key,
            lease_s=spec.tasks.lease_for(spec.timeout_s),
            max_attempts=spec.tasks.max_attempts,
        )  # ttl_s: JOB_TASK_TTL_S, not the endpoint's result_ttl_s (see there)

    def _principal(self, job: JobView) -> Principal | None:
        if job.token_id is None:
            return None
        try:
            with self._db.unit_of_work(read_only=True) as uow:
                return uow.tokens.get(job.token_id).principal()
        except NotFound:
            return Principal(job.token_id, "gone", frozenset(), frozenset())

    def _openai_target(self, model: str, who: Principal | None) -> _Target:
        """The endpoint `model` names, as the OpenAI router resolves it: `project/name`,
        or a bare name in `default` first, then in the caller's other projects."""
        if "/" in model:
            project, _, name = model.partition("/")
            keys = [endpoint_key(project, name)] if name and "." not in name + project else []
        elif "." in model:
            keys = []
        else:
            projects = (
                sorted(who.projects)
                if who is not None and who.projects is not None
                else self._projects_with(model)
            )
            keys = [model] + [endpoint_key(p, model) for p in projects if p != DEFAULT_PROJECT]
        for key in keys:
            project = split_key(key)[0]
            if who is not None and not who.may(Scope.INVOKE, project):
                continue
            target = self._target(key)
            if target.error is None:
                return target
        return _Target(error=f"model {model!r} not found (no endpoint of that name you may invoke)")

    def _projects_with(self, name: str) -> list[str]:
        with self._db.unit_of_work(read_only=True) as uow:
            keys = [e.name for e in uow.endpoints.list()]
        return sorted(split_key(k)[0] for k in keys if split_key(k)[1] == name)
