"""The callback sender (issue 13): POSTs each ended task's document to its callback URL.

A daemon thread (`start`/`stop`; `run_once` is one turn, for tests) takes the due
callbacks from the store (`store.callbacks.CallbackQueue.take`, which holds each for the
time a delivery may take, so two server processes never deliver one at once) and sends
each:

    POST <callback_url>
    content-type: application/json
    X-Podium-Signature: t=<unix s>,v1=<hex HMAC-SHA256(endpoint's key, f"{t}." + body)>
    X-Podium-Task-Id: <task id>

    <the task as GET /api/v1/tasks/{id} answers it, attempt_log included: a receiver
     wants the reason of a failure>

The URL is checked against the allow-list again before each delivery (the operator may
have removed its host since the task was made): a refused one is given up, never
contacted. Redirects are not followed; each delivery has `callback_timeout_s`. A 2xx
answer is `delivered`; anything else (another status, a connection error, a timeout) is
retried after `callback_backoff_s * 2^(n-1)` for the n-th failed delivery, up to
`callback_attempts` deliveries, then `failed`. Each delivery is counted
(`callback_attempts`) and its failure kept (`callback_error`: the status or the
exception's class; never the key, never the receiver's body).

Deliveries are sequential on the one thread: a slow receiver delays the others by at most
its timeout. Store errors (a busy SQLite: `Retryable`) are logged and the turn is tried
again next poll; nothing kills the loop.
"""

from __future__ import annotations

import json
import logging
import threading

import httpx

from podium.api.services.tasks import task_document, task_out
from podium.core.callbacks import SIGNATURE_HEADER, callback_refusal, sign
from podium.core.errors import PodiumError
from podium.core.settings import TaskSettings
from podium.store.db import Database
from podium.store.secret_box import SecretBox
from podium.store.task_records import TaskView

log = logging.getLogger("podium.callbacks")

POLL_S = 0.5  # how often the thread looks for due callbacks
BATCH = 32  # callbacks taken per turn
TASK_ID_HEADER = "X-Podium-Task-Id"
USER_AGENT = "podium-callbacks"


class CallbackSender:
    def __init__(
        self,
        db: Database,
        settings: TaskSettings,
        box: SecretBox,
        *,
        poll_s: float = POLL_S,
        batch: int = BATCH,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._box = box
        self._poll_s = poll_s
        self._batch = batch
        self._http = httpx.Client(
            timeout=settings.callback_timeout_s,
            follow_redirects=False,
            transport=transport,
            headers={"user-agent": USER_AGENT},
            trust_env=False,  # the allow-list names the host contacted: no proxy between
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0  # counts, for tests and logs
        self.failed_deliveries = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="podium-callbacks", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._http.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() >= self._batch
            except Exception:  # never let one bad turn end the thread
                log.exception("callback sender: a turn failed; trying again")
                busy = False
            if not busy:
                self._stop.wait(self._poll_s)

    # ------------------------------------------------------------------ one turn

    def run_once(self) -> int:
        """Deliver the callbacks due now (at most one batch); returns how many were taken."""
        hold_s = self._settings.callback_timeout_s * 2 + 5.0
        try:
            with self._db.unit_of_work() as uow:
                due = uow.callbacks.take(self._batch, hold_s)
        except PodiumError as e:  # Retryable (SQLite busy), Unavailable: next turn
            log.warning("callback sender: cannot read the queue: %s", e)
            return 0
        for task in due:
            if self._stop.is_set():
                break  # the rest stay held for hold_s, then are due again
            try:
                self._deliver(task)
            except PodiumError as e:
                log.warning("callback sender: task %s: %s", task.id, e)
        return len(due)

    def _deliver(self, task: TaskView) -> None:
        url = task.callback_url
        if url is None:  # pragma: no cover - take() selects tasks with a callback
            return
        refusal = callback_refusal(url, self._settings.callback_hosts)
        if refusal is not None:
            with self._db.unit_of_work() as uow:
                uow.callbacks.give_up(task.id, f"not sent: {refusal}")
            log.warning("callback of task %s not sent: %s", task.id, refusal)
            return
        with self._db.unit_of_work() as uow:
            key = uow.callback_keys.get(task.endpoint, self._box)
            if key is None and uow.endpoints.exists(task.endpoint):
                key = uow.callback_keys.get_or_create(task.endpoint, self._box)
            attempts = uow.tasks.attempts(task.id)
        if key is None:  # its endpoint is gone, and its key with it: never make a new one
            with self._db.unit_of_work() as uow:  # (a re-created endpoint would inherit it)
                uow.callbacks.give_up(task.id, "not sent: its endpoint was deleted")
            return
        body = json.dumps(
            task_document(task_out(task, attempts=attempts)), separators=(",", ":")
        ).encode()
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(key, body),
            TASK_ID_HEADER: task.id,
        }
        del key
        error: str | None
        try:
            answer = self._http.post(url, content=body, headers=headers)
            error = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
        except httpx.HTTPError as e:
            error = type(e).__name__
        done = task.callback_attempts + 1
        retry_in = None
        if error is not None and done < self._settings.callback_attempts:
            retry_in = self._settings.callback_backoff_s * 2 ** (done - 1)
        with self._db.unit_of_work() as uow:
            state = uow.callbacks.record(task.id, error=error, retry_in=retry_in)
        if error is None:
            self.delivered += 1
        else:
            self.failed_deliveries += 1
            log.info(
                "callback of task %s: delivery %d failed (%s); %s",
                task.id,
                done,
                error,
                "given up" if state == "failed" else f"retry in {retry_in:g} s",
            )
