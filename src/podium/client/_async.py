"""`AsyncClient`: the endpoint lifecycle and the data plane of `PodiumClient`, awaited.

    async with AsyncClient() as podium:                  # $PODIUM_URL, $PODIUM_TOKEN
        await podium.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
        await podium.wait_for("iris", {"running"})
        await podium.invoke("iris", {"inputs": [[5.1, 3.5, 1.4, 0.2]]})
        task = await podium.predict_async("iris", {"inputs": [[5.1, 3.5, 1.4, 0.2]]})
        await task.result(timeout=60)

The requests, their validation and the reading of answers are `_calls`' (the same as the
sync client's), errors are the `podium.core.errors` tree (`_errors`), and refused requests
are retried by the same `RetryPolicy`; only the sending is awaited (httpx.AsyncClient).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from podium.client import _calls as calls
from podium.client._errors import raise_for_status, translate_transport
from podium.client._retry import DEFAULT_MAX_RETRIES, DEFAULT_MAX_TOTAL_S, RetryPolicy, replayable
from podium.client._tasks import POLL_FIRST_S, POLL_MAX_S, next_poll, result_answer, settled
from podium.core.phases import EndpointStatus
from podium.core.schemas import EndpointList, EndpointPublic
from podium.core.spec import EndpointCreate, EndpointUpdate
from podium.core.task_schemas import TaskOut

M = TypeVar("M", bound=BaseModel)
NO_RETRY = RetryPolicy(max_retries=0)


class AsyncClient:
    """An asyncio client for one Podium server; the arguments are `PodiumClient`'s
    (`transport`: an `httpx.AsyncBaseTransport`)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_TOTAL_S,
    ) -> None:
        self.retry = RetryPolicy(max_retries=max_retries, max_total_s=max_retry_wait)
        # The token is also given to the clients an endpoint makes (`.client`, `.openai()`).
        self.base_url, self.auth_token, headers = calls.connection(base_url, token)
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, headers=headers
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient({self.base_url!r})"

    # ------------------------------------------------------------ endpoints

    async def deploy(self, spec: EndpointCreate | Mapping[str, Any]) -> EndpointPublic:
        """`PodiumClient.deploy`: create an endpoint."""
        return await self._view(calls.deploy(spec))

    async def endpoints(
        self,
        status: EndpointStatus | str | None = None,
        label: str | Mapping[str, str] | None = None,
        name: str | None = None,
        project: str | None = None,
    ) -> list[EndpointPublic]:
        """`PodiumClient.endpoints`: list endpoints."""
        response = await self._call(calls.list_endpoints(status, label, name, project))
        return calls.parse(response, EndpointList, self.base_url).items

    async def endpoint(self, name: str, *, project: str | None = None) -> EndpointPublic:
        return await self._view(calls.get_endpoint(name, project))

    async def update(
        self,
        name: str,
        changes: EndpointUpdate | Mapping[str, Any],
        *,
        project: str | None = None,
    ) -> EndpointPublic:
        """`PodiumClient.update`: change the fields given."""
        return await self._view(calls.update(name, changes, project))

    async def scale(
        self, name: str, min_replicas: int, max_replicas: int, *, project: str | None = None
    ) -> EndpointPublic:
        return await self._view(calls.scale(name, min_replicas, max_replicas, project))

    async def pause(self, name: str, *, project: str | None = None) -> EndpointPublic:
        return await self._view(calls.action(name, "pause", project=project))

    async def resume(self, name: str, *, project: str | None = None) -> EndpointPublic:
        return await self._view(calls.action(name, "resume", project=project))

    async def wake(self, name: str, *, project: str | None = None) -> EndpointPublic:
        return await self._view(calls.action(name, "wake", project=project))

    async def scale_to_zero(self, name: str, *, project: str | None = None) -> EndpointPublic:
        """Stop every replica now; the next request wakes the endpoint."""
        return await self._view(calls.action(name, "scale-to-zero", project=project))

    async def delete(self, name: str, *, project: str | None = None) -> EndpointPublic:
        return await self._view(calls.delete(name, project))

    async def wait_for(
        self,
        name: str,
        statuses: Iterable[EndpointStatus | str],
        timeout: float = 120,
        poll: float = 0.25,
        *,
        project: str | None = None,
    ) -> EndpointPublic:
        """`PodiumClient.wait_for`: `LoadError` when it failed, `WaitTimeout` on timeout."""
        wanted = frozenset(EndpointStatus(s) for s in statuses)
        deadline = time.monotonic() + timeout
        while True:
            ep = await self.endpoint(name, project=project)
            left = deadline - time.monotonic()
            if calls.wait_done(ep, wanted, timeout, left):
                return ep
            await asyncio.sleep(min(poll, left))

    # ------------------------------------------------------------ data plane

    async def invoke(
        self,
        name: str,
        payload: Any,
        *,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        project: str | None = None,
    ) -> Any:
        """`PodiumClient.invoke`: POST `payload` to the endpoint; its answer."""
        call = calls.invoke(name, payload, path=path, headers=headers, project=project)
        return calls.invoke_answer(await self._call(call))

    async def predict_async(
        self, name: str, body: Any, *, path: str = "/", **options: Any
    ) -> AsyncTaskFuture:
        """`PodiumClient.predict_async` (same options): queue a task; its future."""
        response = await self._call(calls.predict_async(name, body, path=path, **options))
        task_id, replayed = calls.task_accepted(response)
        return AsyncTaskFuture(self, task_id, replayed=replayed)

    def task(self, task_id: str) -> AsyncTaskFuture:
        """A handle on a task made earlier (by id)."""
        return AsyncTaskFuture(self, task_id)

    # ------------------------------------------------------------ plumbing

    async def _view(self, call: calls.Call) -> EndpointPublic:
        return calls.parse(await self._call(call), EndpointPublic, self.base_url)

    async def _call(self, call: calls.Call) -> httpx.Response:
        return await self._send(call.method, call.url, relayed=call.relayed, **call.kwargs())

    async def _send(
        self, method: str, url: str, *, relayed: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """As `PodiumClient._send`: retried while refused, errors raised."""
        policy = self.retry if replayable(kwargs) else NO_RETRY
        retries, waited = 0, 0.0
        while True:
            with translate_transport(self.base_url):
                response = await self._http.request(method, url, **kwargs)
            wait = policy.delay(response, retries, waited, relayed=relayed)
            if wait is None:
                break
            await response.aclose()
            await asyncio.sleep(wait)
            retries, waited = retries + 1, waited + wait
        raise_for_status(response)
        return response


class AsyncTaskFuture:
    """`TaskFuture`, awaited: `await future.result(timeout)`."""

    def __init__(self, client: AsyncClient, task_id: str, *, replayed: bool = False) -> None:
        self._client = client
        self.id = task_id
        self.replayed = replayed

    def __repr__(self) -> str:
        return f"AsyncTaskFuture({self.id!r})"

    async def refresh(self) -> TaskOut:
        response = await self._client._call(calls.get_task(self.id))
        return calls.parse(response, TaskOut, self._client.base_url)

    async def status(self) -> str:
        return (await self.refresh()).status.value

    async def cancel(self) -> TaskOut:
        response = await self._client._call(calls.cancel_task(self.id))
        return calls.parse(response, TaskOut, self._client.base_url)

    async def result(self, timeout: float | None = None) -> Any:
        """As `TaskFuture.result`: the result, `TaskFailed`, or `TimeoutError`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = POLL_FIRST_S
        while True:
            task = await self.refresh()
            if settled(task):
                if task.result is not None or task.result_url is None:
                    return task.result
                return result_answer(await self._client._send("GET", task.result_url))
            wait = next_poll(task, wait, deadline, timeout)
            await asyncio.sleep(wait)
            wait = min(wait * 1.5, POLL_MAX_S)
