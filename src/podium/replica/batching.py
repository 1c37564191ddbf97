"""Dynamic batching: concurrent requests with equal `parameters` answered by one
`predict_batch` call.

Requests wait in a group (one per distinct `parameters`) until it holds `max_batch_size`
items or `max_wait_ms` passed since its first item arrived; the group then goes to the
worker pool as one call, as soon as fewer than `max_concurrent_batches` batches run (a
group waiting for its turn still takes requests, so batches grow under load). If that call
raises, its items are retried one by one with `predict`, so a bad request fails alone. A
`predict_batch` that returns the wrong number of outputs is a runtime bug: every request
of that batch fails with a message saying so.

Runs on the event loop; each request already holds its admission slot while it waits, so
a batch is never larger than `max_concurrency` (set it at least to `max_batch_size`).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

BatchFn = Callable[[list[Any], dict[str, Any]], list[Any]]
OneFn = Callable[[Any, dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class BatchConfig:
    max_batch_size: int = 8
    max_wait_ms: float = 5.0
    max_concurrent_batches: int = 1  # batches in the worker pool at once ("lanes")

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if self.max_wait_ms < 0:
            raise ValueError("max_wait_ms must not be negative")
        if self.max_concurrent_batches < 1:
            raise ValueError("max_concurrent_batches must be at least 1")


class BatchSizeMismatch(RuntimeError):
    """`predict_batch` answered a batch with the wrong number of outputs."""


@dataclass(eq=False)
class _Group:
    key: str
    parameters: dict[str, Any]
    items: list[tuple[Any, asyncio.Future[Any]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    due: bool = False


class Batcher:
    """Groups requests into batches; at most `max_concurrent_batches` run at once.

    A group is due when it is full or `max_wait_ms` after its first item; due groups go
    to the pool in order as lanes free up, and a due group still takes new requests (up
    to `max_batch_size`) until it goes. Under load, batches therefore grow while the
    previous one computes, as with Triton's dynamic batcher and one model instance.
    """

    def __init__(
        self,
        pool: Executor,
        predict_batch: BatchFn,
        predict: OneFn,
        config: BatchConfig,
        *,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._pool = pool
        self._batch = predict_batch
        self._one = predict
        self.config = config
        self._on_batch = on_batch
        self._open: dict[str, _Group] = {}  # per parameters: the group taking requests
        self._due: deque[_Group] = deque()
        self._busy = 0
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: Any, parameters: dict[str, Any]) -> Any:
        """The output for one request's `inputs`, computed within some batch."""
        loop = asyncio.get_running_loop()
        key = _key(parameters)
        group = self._open.get(key)
        if group is None:
            group = self._open[key] = _Group(key, parameters)
            group.timer = loop.call_later(self.config.max_wait_ms / 1000, self._make_due, group)
        future: asyncio.Future[Any] = loop.create_future()
        future.add_done_callback(_retrieved)
        group.items.append((item, future))
        if len(group.items) >= self.config.max_batch_size:
            del self._open[key]  # full: the next request starts a new group
            self._make_due(group)
        # The batch runs even if this request is abandoned; its output is then dropped.
        return await asyncio.shield(future)

    @property
    def waiting(self) -> int:
        """Requests not yet handed to the pool."""
        groups = {id(g): g for g in (*self._open.values(), *self._due)}
        return sum(len(g.items) for g in groups.values())

    def _make_due(self, group: _Group) -> None:
        if group.timer is not None:
            group.timer.cancel()
            group.timer = None
        if not group.due:
            group.due = True
            self._due.append(group)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._busy < self.config.max_concurrent_batches and self._due:
            group = self._due.popleft()
            if self._open.get(group.key) is group:
                del self._open[group.key]
            self._busy += 1
            task = asyncio.ensure_future(self._run(group.parameters, group.items))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._busy -= 1
        self._dispatch()

    async def _run(
        self, parameters: dict[str, Any], items: list[tuple[Any, asyncio.Future[Any]]]
    ) -> None:
        loop = asyncio.get_running_loop()
        inputs = [item for item, _ in items]
        if self._on_batch is not None:
            self._on_batch(len(items))
        try:
            outputs = await loop.run_in_executor(self._pool, self._batch, inputs, parameters)
        except Exception as e:
            if len(items) == 1:
                _settle(items[0][1], error=e)
                return
            await asyncio.gather(*(self._retry(item, future, parameters) for item, future in items))
            return
        if not isinstance(outputs, list) or len(outputs) != len(items):
            got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
            error = BatchSizeMismatch(
                f"predict_batch returned {got} outputs for a batch of {len(items)} inputs"
            )
            for _, future in items:
                _settle(future, error=error)
            return
        for (_, future), output in zip(items, outputs, strict=True):
            _settle(future, output)

    async def _retry(
        self, item: Any, future: asyncio.Future[Any], parameters: dict[str, Any]
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            output = await loop.run_in_executor(self._pool, self._one, item, parameters)
        except Exception as e:
            _settle(future, error=e)
        else:
            _settle(future, output)


def _settle(
    future: asyncio.Future[Any], value: Any = None, *, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark an error as seen, so an abandoned request's failure is not logged as lost."""
    if not future.cancelled():
        future.exception()


def _key(parameters: dict[str, Any]) -> str:
    """Equal parameters, equal key (key order does not matter)."""
    try:
        return json.dumps(parameters, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(sorted(parameters.items(), key=lambda kv: str(kv[0])))
