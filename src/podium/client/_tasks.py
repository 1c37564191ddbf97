"""The SDK's async tasks (issue 13): `predict_async` → `TaskFuture`, and the task routes.

    future = podium.predict_async("iris", {"inputs": [[5.1, 3.5, 1.4, 0.2]]})
    future.status()               # "pending", "running", "succeeded", …
    answer = future.result(timeout=60)   # polls with backoff; JSON value or bytes

`predict_async` POSTs the body to the gateway's `/endpoints/{name}/async/{path}` exactly as
`invoke` POSTs to `/endpoints/{name}/{path}`; the gateway answers 202 with the task's id.
A task that failed, was cancelled or expired makes `result()` raise `TaskFailed`, whose
message is the task's own error (a dead-lettered task's names its last attempt's reason;
`TaskFailed.task.attempt_log` has every one).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from podium.client import _calls as calls
from podium.client._access import project_params
from podium.core.errors import PodiumError
from podium.core.task_schemas import CallbackKeyOut, TaskOut, TaskPage
from podium.core.tasks import TaskStatus

M = TypeVar("M", bound=BaseModel)

POLL_FIRST_S = 0.1  # result() looks again after this, then 1.5x longer each time …
POLL_MAX_S = 2.0  # … up to this
_ENDED = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class TaskFailed(PodiumError):
    """The task ended without a result: failed (its error says why), cancelled or
    expired. `task` is its last view."""

    def __init__(self, task: TaskOut) -> None:
        why = task.error or task.status.value
        super().__init__(f"task {task.id} {task.status.value}: {why}", field="task")
        self.task = task


class _Client:
    """What a `TaskFuture` needs of `PodiumClient` (its plumbing)."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...
        def _parse(self, response: httpx.Response, cls: type[M]) -> M: ...
        def _call(self, call: calls.Call) -> httpx.Response: ...


class TaskFuture:
    """A handle on one task: poll it, wait for its result, cancel it."""

    def __init__(self, client: _Client, task_id: str, *, replayed: bool = False) -> None:
        self._client = client
        self.id = task_id
        # True when the gateway answered an Idempotency-Key it had seen: the same task.
        self.replayed = replayed

    def __repr__(self) -> str:
        return f"TaskFuture({self.id!r})"

    def refresh(self) -> TaskOut:
        """The task as it is now (its attempts included)."""
        return self._client._parse(self._client._call(calls.get_task(self.id)), TaskOut)

    def status(self) -> str:
        return self.refresh().status.value

    def cancel(self) -> TaskOut:
        """Cancel the task if it is pending or running (`Conflict` once it has ended)."""
        return self._client._parse(self._client._call(calls.cancel_task(self.id)), TaskOut)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the task to end and return its result: the JSON value when the answer
        was JSON, else its bytes. `TaskFailed` when it failed, was cancelled or expired;
        `TimeoutError` when it has not ended within `timeout` seconds (None: wait on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = POLL_FIRST_S
        while True:
            task = self.refresh()
            if settled(task):
                if task.result is not None or task.result_url is None:
                    return task.result
                return result_answer(self._client._send("GET", task.result_url))
            wait = next_poll(task, wait, deadline, timeout)
            time.sleep(wait)
            wait = min(wait * 1.5, POLL_MAX_S)


def settled(task: TaskOut) -> bool:
    """True when the task succeeded; `TaskFailed` when it ended otherwise; False while it
    is pending or running."""
    if task.status is TaskStatus.SUCCEEDED:
        return True
    if task.status in _ENDED or task.status is TaskStatus.EXPIRED:
        raise TaskFailed(task)
    return False


def next_poll(task: TaskOut, wait: float, deadline: float | None, timeout: float | None) -> float:
    """How long to wait before looking at a running task again (`TimeoutError` when the
    caller's `timeout` has passed)."""
    if deadline is None:
        return wait
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"task {task.id} is still {task.status.value} after {timeout:g} s")
    return min(wait, left)


def result_answer(response: httpx.Response) -> Any:
    """A stored result fetched from its `result_url`: the JSON value when it is JSON, else
    its bytes."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return response.json()
        except ValueError:
            return response.content
    return response.content


class Endpoint:
    """A handle on one endpoint for calling it: `podium.use("iris")`.

    iris = podium.use("iris")
    iris.predict({"inputs": [[5.1, 3.5, 1.4, 0.2]]})          # synchronous
    iris.predict_async({"inputs": [[5.1, 3.5, 1.4, 0.2]]}).result(timeout=60)
    """

    def __init__(self, client: TaskMethods, name: str, project: str | None = None) -> None:
        self._client = client
        self.name = name
        self.project = project

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, project={self.project!r})"

    def predict(
        self, body: Any, *, path: str = "/", headers: Mapping[str, str] | None = None
    ) -> Any:
        """`PodiumClient.invoke` on this endpoint."""
        return self._client.invoke(
            self.name, body, path=path, headers=headers, project=self.project
        )

    def predict_async(self, body: Any, *, path: str = "/", **options: Any) -> TaskFuture:
        """`PodiumClient.predict_async` on this endpoint (same options)."""
        return self._client.predict_async(
            self.name, body, path=path, project=self.project, **options
        )

    def tasks(self, **options: Any) -> TaskPage:
        return self._client.tasks(self.name, project=self.project, **options)


class TaskMethods(_Client):
    """`PodiumClient`'s task methods (a mixin over its plumbing)."""

    if TYPE_CHECKING:

        def invoke(
            self,
            name: str,
            payload: Any,
            *,
            path: str = "/",
            headers: Mapping[str, str] | None = None,
            project: str | None = None,
        ) -> Any: ...

    def use(self, name: str, *, project: str | None = None) -> Endpoint:
        """A handle on endpoint `name` for calling it (`predict`, `predict_async`)."""
        return Endpoint(self, name, project)

    def predict_async(
        self,
        name: str,
        body: Any,
        *,
        path: str = "/",
        priority: int | None = None,
        ttl_s: float | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        project: str | None = None,
    ) -> TaskFuture:
        """Queue `body` (sent as JSON; `bytes` as they are) for the endpoint at `path`;
        returns at once with the task (see the module doc). `priority` 0-9 (higher runs
        first), `ttl_s` how long the result is kept, `idempotency_key` makes a retry of
        this call return the same task, `callback_url` gets the task's document when it
        ends (the server must allow its host)."""
        call = calls.predict_async(
            name,
            body,
            path=path,
            priority=priority,
            ttl_s=ttl_s,
            idempotency_key=idempotency_key,
            callback_url=callback_url,
            headers=headers,
            project=project,
        )
        task_id, replayed = calls.task_accepted(self._call(call))
        return TaskFuture(self, task_id, replayed=replayed)

    def task(self, task_id: str) -> TaskFuture:
        """A handle on a task made earlier (by id)."""
        return TaskFuture(self, task_id)

    def tasks(
        self,
        endpoint: str,
        *,
        status: TaskStatus | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        project: str | None = None,
    ) -> TaskPage:
        """One page of the endpoint's tasks, newest first (`limit` ≤ 500);
        `page.next_cursor` as `cursor` asks for the next (older) page."""
        params: dict[str, Any] = {"limit": limit, **project_params(project)}
        if status is not None:
            params["status"] = TaskStatus(status).value
        if cursor is not None:
            params["cursor"] = cursor
        response = self._request("GET", f"/endpoints/{_seg(endpoint)}/tasks", params=params)
        return self._parse(response, TaskPage)

    def callback_key(self, endpoint: str, *, project: str | None = None) -> bytes:
        """The key the endpoint's callbacks are signed with (needs `deploy`): give it to
        `verify_signature` in the receiver."""
        response = self._request(
            "GET", f"/endpoints/{_seg(endpoint)}/callback-key", params=project_params(project)
        )
        return bytes.fromhex(self._parse(response, CallbackKeyOut).key)

    def rotate_callback_key(self, endpoint: str, *, project: str | None = None) -> bytes:
        response = self._request(
            "POST",
            f"/endpoints/{_seg(endpoint)}/callback-key/rotate",
            params=project_params(project),
        )
        return bytes.fromhex(self._parse(response, CallbackKeyOut).key)


def _seg(value: str) -> str:
    return quote(value, safe="")
