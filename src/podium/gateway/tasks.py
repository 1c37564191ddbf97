"""The task dispatcher (issue 13): runs queued tasks through the gateway's own pipeline.

One `TaskDispatcher` per gateway, an asyncio loop in the gateway's event loop. Each round
(`run_once`):

1. **slots**: per endpoint of the routing table, the task slots free now:
   `ceil(slot_share * max_concurrency * ready replicas)` (at least 1) minus the tasks this
   dispatcher runs for it; 0 for an endpoint with no ready replica (its tasks wait for the
   autoscaler, which sees the queue depth) or a paused one. Synchronous callers keep the
   rest of the slots.
2. **claim** the tasks (`TaskStore.claim`, in a thread): each becomes `running` under this
   dispatcher's lease.
3. **run** each as an asyncio task: `Pipeline.invoke` with an internal ASGI scope (the
   task's method, path and forwarded headers, `x-request-id: {task}-{attempt}`,
   `scope[TASK_KEY]`, the creator's principal pre-set: it was authorised, and counted by
   the rate limits, when it was enqueued), so each attempt is one request record, metered,
   admitted and forwarded as any call. Its answer is collected (bounded) and the outcome
   recorded with `TaskStore.finish` (fenced: recorded once). Outcome rule (`outcome_of`):
   2xx succeeded; another answer under 500 failed (the caller's mistake, not retried);
   5xx, no answer, a timeout retried (dead-lettered after `max_attempts`).
4. **cancel**: tasks this dispatcher runs that are no longer `running` under its attempt
   (cancelled through the API, or their lease passed to another dispatcher) have their
   asyncio task cancelled: the proxy drops the upstream request.

Every `sweep_s`: expired leases go back to the queue (`release_expired`) and tasks past
their TTL expire. Idle, it sleeps `poll_s`, or less: an enqueue through this gateway wakes
it (`wake`). On `stop` it claims no more, cancels what it runs without recording it and
gives those tasks back to the queue (`TaskStore.give_back`), so a restarted server (or
another dispatcher) runs them again at once. A dispatcher that dies without stopping
leaves them to their leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from podium.core.access import NOBODY_CHECKS, AuthFailure, Principal, TokenDirectory
from podium.core.access import Scope as AccessScope
from podium.core.asgi import Message
from podium.core.phases import EndpointStatus
from podium.core.replica_paths import internal_target
from podium.core.routing import EndpointRoute, RoutingSource
from podium.core.settings import TaskSettings
from podium.core.tasks import TASK_KEY, AttemptOutcome
from podium.gateway.activator import MAX_WAIT_S, WAIT_HEADER
from podium.gateway.pipeline import Pipeline
from podium.gateway.recording import PRINCIPAL, TASK_WAIT
from podium.gateway.task_store import TaskStore
from podium.store.task_records import Claimed, Outcome

log = logging.getLogger("podium.gateway.tasks")

LEASE_SPARE_S = 5.0  # of a lease, left unused by an attempt (clock steps, recording)
MAX_RESULT_BYTES = 64 * 2**20  # a larger answer fails the task (never held in memory)


def new_owner() -> str:
    """This dispatcher's id in the leases it takes: host, process and a random part (two
    dispatchers of one process, or a restarted process with the same pid, differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def task_slots(route: EndpointRoute, share: float) -> int:
    """How many tasks of this endpoint may run at once (module docstring, step 1)."""
    if route.status is EndpointStatus.PAUSED or not route.replicas:
        return 0
    return max(1, math.ceil(share * route.max_concurrency * len(route.replicas)))


@dataclass(slots=True)
class Answer:
    """What a dispatched call answered (collected from the pipeline's `send`)."""

    status: int = 0
    content_type: str | None = None
    body: bytearray | None = None
    too_large: bool = False
    replica_id: str | None = None  # the replica's `x-podium-replica` header, if it answered


def outcome_of(answer: Answer) -> Outcome:
    """The attempt's outcome by the contract's rule (module docstring, step 3)."""
    status = answer.status
    body = bytes(answer.body or b"")
    if status == 0:
        return Outcome(AttemptOutcome.RETRY, None, "no answer: the call was cut off")
    if answer.too_large:
        return Outcome(
            AttemptOutcome.FAILED,
            status,
            f"the answer is larger than {MAX_RESULT_BYTES} bytes, more than a task keeps",
        )
    if 200 <= status < 300:
        return Outcome(AttemptOutcome.SUCCEEDED, status, None, body, answer.content_type)
    reason = f"HTTP {status}: {_excerpt(body)}"
    if status >= 500:
        return Outcome(AttemptOutcome.RETRY, status, reason)
    return Outcome(AttemptOutcome.FAILED, status, reason, body, answer.content_type)


def inline(outcome: Outcome, limit: int) -> bool:
    """Whether a result is kept in the task's row: JSON of at most `limit` bytes (else it
    is a file: `TaskDispatcher(save_result=…)`)."""
    kind = (outcome.result_type or "").split(";")[0].strip().lower()
    json_type = kind == "application/json" or kind.endswith("+json")
    return json_type and len(outcome.result or b"") <= limit


def _excerpt(body: bytes, limit: int = 500) -> str:
    """An answer's reason: a problem's `detail`, else the first characters of the body."""
    if body[:1] == b"{":
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("detail"), str):
            return str(doc["detail"])[:limit]
    return body[:limit].decode("utf-8", "replace")


class TaskDispatcher:
    """The dispatcher of one gateway (module docstring)."""

    def __init__(
        self,
        pipeline: Pipeline,
        routing: RoutingSource,
        store: TaskStore,
        settings: TaskSettings,
        *,
        owner: str | None = None,
        delete_files: Callable[[list[str]], None] | None = None,
        save_result: Callable[[Claimed, bytes, str | None], str] | None = None,
        wall_clock: Callable[[], float] = time.time,
        tokens: TokenDirectory | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._routing = routing
        self._store = store
        self._settings = settings
        self.owner = owner or new_owner()
        self._delete_files = delete_files
        self._save_result = save_result
        self._wall_clock = wall_clock  # the store's clock: a task's queue wait is measured on it
        # The live tokens (auth on): a task runs as its creator only while the creator's
        # token is live and may still invoke the endpoint's project.
        self._tokens = tokens
        self._running: dict[str, tuple[Claimed, asyncio.Task[None]]] = {}
        self._per_endpoint: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._last_sweep = 0.0
        self._last_cancel_check = 0.0
        self._stopping = False
        self.finished = 0  # outcomes recorded (tests, metrics)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._stopping = False
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    def wake(self) -> None:
        """A task was enqueued: look now (called on the event loop)."""
        self._wake.set()

    async def stop(self) -> None:
        """Claim no more; cancel the running tasks without recording them (module doc)."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        running = [t for _, t in self._running.values()]
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if running:
            try:
                given = await asyncio.to_thread(self._store.give_back, self.owner)
            except Exception:  # the store is down: the leases will run out instead
                log.exception("could not give the running tasks back to the queue")
            else:
                log.info("gave %d running task(s) back to the queue", given)

    @property
    def running(self) -> int:
        return len(self._running)

    async def _loop(self) -> None:
        poll = self._settings.poll_s
        while not self._stopping:
            # Cleared before the round, never after it: a task that ends (or is enqueued)
            # while the round awaits the store sets it again, and the wait below returns at
            # once. Cleared after the round, that wake-up was lost and its free slot idled
            # for up to `poll_s` (the end-to-end rate was a quarter of what it is now).
            self._wake.clear()
            now = time.monotonic()
            cancels = now - self._last_cancel_check >= poll
            if cancels:
                self._last_cancel_check = now
            try:
                claimed = await self.run_once(cancels=cancels)
            except asyncio.CancelledError:
                raise
            except Exception:  # a busy database, a bug: logged, tried next round
                log.exception("task dispatcher round failed")
                claimed = 0
            if claimed:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)

    # -- one round --------------------------------------------------------------------------

    async def run_once(self, *, cancels: bool = True) -> int:
        """One round (module docstring); returns how many tasks it claimed. `cancels`:
        look for tasks no longer ours (a store read; the loop does it once per `poll_s`, not
        once per round, which is once per task under load)."""
        now = time.monotonic()
        if now - self._last_sweep >= self._settings.sweep_s:
            self._last_sweep = now
            await self._sweep()
        if cancels:
            await self._cancel_gone()
        free = self.free_slots()
        if not free or self._stopping:
            return 0
        claimed = await asyncio.to_thread(self._store.claim, self.owner, free)
        for task in claimed:
            self._start(task)
        return len(claimed)

    def free_slots(self) -> dict[str, int]:
        """Per endpoint, tasks this dispatcher may claim now (at most `claim_batch`)."""
        share, batch = self._settings.slot_share, self._settings.claim_batch
        free: dict[str, int] = {}
        for name, route in self._routing.table.endpoints.items():
            slots = task_slots(route, share) - self._per_endpoint.get(name, 0)
            if slots > 0:
                free[name] = min(slots, batch)
        return free

    async def _sweep(self) -> None:
        released, expired, files = await asyncio.to_thread(self._store.sweep, 500)
        if released or expired:
            log.info("tasks: %d expired leases released, %d tasks expired", released, expired)
        if files and self._delete_files is not None:
            await asyncio.to_thread(self._delete_files, files)

    async def _cancel_gone(self) -> None:
        if not self._running:
            return
        held = [(task_id, c.attempt) for task_id, (c, _) in self._running.items()]
        alive = await asyncio.to_thread(self._store.still_running, self.owner, held)
        for task_id, _ in held:
            if task_id not in alive and task_id in self._running:
                log.info("task %s is no longer ours to run (cancelled or taken over)", task_id)
                self._running[task_id][1].cancel()

    def _start(self, task: Claimed) -> None:
        runner = asyncio.get_running_loop().create_task(self._run(task))
        self._running[task.id] = (task, runner)
        self._per_endpoint[task.endpoint] = self._per_endpoint.get(task.endpoint, 0) + 1
        runner.add_done_callback(lambda _t: self._done(task))

    def _done(self, task: Claimed) -> None:
        entry = self._running.get(task.id)
        if entry is not None and entry[0].attempt == task.attempt:
            del self._running[task.id]
        left = self._per_endpoint.get(task.endpoint, 1) - 1
        if left > 0:
            self._per_endpoint[task.endpoint] = left
        else:
            self._per_endpoint.pop(task.endpoint, None)
        self._wake.set()  # a slot is free

    # -- one task ---------------------------------------------------------------------------

    async def _run(self, task: Claimed) -> None:
        try:
            answer = await self.call(task)
        except asyncio.CancelledError:
            return  # cancelled, taken over or stopping: nothing is recorded by this attempt
        except Exception as e:  # a bug on the way: retried like a crash
            log.exception("task %s attempt %d failed in the gateway", task.id, task.attempt)
            answer = None
            outcome = Outcome(AttemptOutcome.RETRY, None, f"the gateway failed: {e!r}"[:500])
        if answer is not None:
            outcome = outcome_of(answer)
            outcome.replica_id = answer.replica_id
        try:
            await asyncio.to_thread(self._record, task, outcome)
            self.finished += 1
        except Exception:  # its lease runs out and it is retried
            log.exception("could not record the outcome of task %s", task.id)

    def _record(self, task: Claimed, outcome: Outcome) -> None:
        """Store the outcome (in a thread): a success too large for the row, or not JSON,
        goes to a file first (`save_result`), deleted again when the answer came too late
        (stale). Without `save_result` every result is kept in the row."""
        saved = None
        limit = self._settings.inline_result_bytes
        if (
            outcome.kind is AttemptOutcome.SUCCEEDED
            and self._save_result is not None
            and not inline(outcome, limit)
        ):
            saved = self._save_result(task, outcome.result or b"", outcome.result_type)
            outcome.result, outcome.result_file = None, saved
        status = self._store.finish(task.id, task.attempt, self.owner, outcome)
        if status is None and saved is not None and self._delete_files is not None:
            self._delete_files([saved])

    def _creator(self, task: Claimed) -> Principal | Answer:
        """Who the task runs as: its creator's principal as the live tokens hold it now, or
        the 401/403 answer that fails the task (the token was revoked or expired, or lost
        `invoke` on the project, since the task was created)."""
        if task.token_id is None:
            return NOBODY_CHECKS  # created without a token: a public endpoint, or auth off
        if self._tokens is None:
            return principal_of(task)
        who = self._tokens.principal_of(task.token_id)
        if isinstance(who, AuthFailure):
            return Answer(
                401, "text/plain", bytearray(f"its creator's token: {who.value}".encode())
            )
        if not who.may(AccessScope.INVOKE, task.project):
            text = f"its creator's token may no longer invoke project {task.project!r}"
            return Answer(403, "text/plain", bytearray(text.encode()))
        return who

    async def call(self, task: Claimed) -> Answer:
        """Make the task's call through the pipeline; the answer, collected."""
        route = self._routing.table.endpoints.get(task.endpoint)
        answer = Answer()
        if route is None:
            answer.status = 503  # deleted meanwhile (or not yet published): retried
            answer.body = bytearray(b"the endpoint is not in the routing table")
            return answer
        if internal_target(task.path):  # a job's path, say: never a replica's own routes
            answer.status = 404
            answer.body = bytearray(f"no such path {task.path} on the endpoint".encode())
            return answer
        who = self._creator(task)
        if isinstance(who, Answer):
            return who
        scope = internal_scope(task, self._wall_clock(), route.timeout_s, who)
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": task.body, "more_body": False}
            await asyncio.Event().wait()  # no disconnect: only a cancel ends the call
            return {"type": "http.disconnect"}  # pragma: no cover

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                headers = message.get("headers", ())
                answer.content_type = _header(headers, b"content-type")
                answer.replica_id = _header(headers, b"x-podium-replica")
                answer.body = bytearray()
            elif message["type"] == "http.response.body" and answer.body is not None:
                chunk = message.get("body", b"")
                if len(answer.body) + len(chunk) > MAX_RESULT_BYTES:
                    answer.too_large = True
                else:
                    answer.body += chunk

        status = await self._pipeline.invoke(route, scope, receive, send, task.path)
        if status == 0 and answer.status:
            answer.status = 0  # cut mid-answer: no whole answer
        return answer


def principal_of(task: Claimed) -> Principal:
    """The creator as the access stage sees it (authorised when the task was enqueued)."""
    if task.token_id is None:
        return NOBODY_CHECKS
    return Principal(
        token_id=task.token_id,
        name="task creator",
        scopes=frozenset({AccessScope.INVOKE}),
        projects=frozenset({task.project}),
    )


def internal_scope(
    task: Claimed, now: float, timeout_s: float, who: Principal | None = None
) -> dict[str, object]:
    """The ASGI scope of a task's call (module docstring, step 3). Held waiting for a
    replica slot, the call waits at most what its lease leaves after the call's own
    `timeout_s` (and a margin): an attempt never outlives its lease, so a second
    dispatcher never runs the task while the first still does (`X-Podium-Wait-Timeout`)."""
    path, _, query = task.path.partition("?")
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in task.headers]
    headers.append((b"x-request-id", f"{task.id}-{task.attempt}".encode()))
    wait_s = min(MAX_WAIT_S, max(0.0, task.lease_until - now - timeout_s - LEASE_SPARE_S))
    headers.append((WAIT_HEADER, f"{wait_s:.3f}".encode()))
    headers.append((b"content-length", str(len(task.body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": task.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": None,
        "server": None,
        TASK_KEY: task.id,
        PRINCIPAL: principal_of(task) if who is None else who,
        TASK_WAIT: max(0.0, now - task.pending_since) if task.pending_since else 0.0,
    }


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v.decode("latin-1")
    return None
