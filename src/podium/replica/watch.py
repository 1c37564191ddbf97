"""The worker pool, watched: how long the oldest call into the runtime has gone without
progress, so `/health/live` can tell a hung model from a busy one.

Every runtime call (a prediction, a batch, a stream's generation) runs in this pool.
`WatchedPool` notes, per worker thread, when its call began to run (time spent queued for
a worker does not count); a stream's worker calls `progress()` after each item, so a long
but flowing stream is never taken for a hung one. A call that never returns, say a model
spinning in `while True`, keeps its start time for ever: `stalled_s()` grows, and the
controller, which knows the endpoint's request timeout, asks `/health/live?hung_after_s=N`
and restarts the replica when it answers 503.

A call that holds the GIL for ever in C (a catastrophic regular expression) stops the event
loop too: then `/health/live` cannot answer at all, and the controller's liveness probe
times out, which it also reads as hung.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class WatchedPool(ThreadPoolExecutor):
    def __init__(
        self,
        max_workers: int,
        *,
        thread_name_prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_workers, thread_name_prefix=thread_name_prefix)
        self._clock = clock
        self._lock = threading.Lock()
        self._since: dict[int, float] = {}  # worker thread -> start or last progress

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        # In the submitter's context: what the model logs names the request it serves
        # (`core.log_context`; `run_in_executor` would not carry it into the thread).
        context = contextvars.copy_context()
        return super().submit(context.run, self._watched, fn, args, kwargs)

    def _watched(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        me = threading.get_ident()
        with self._lock:
            self._since[me] = self._clock()
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self._since.pop(me, None)

    def progress(self) -> None:
        """Called from inside a call (a stream after each item): its clock starts again."""
        me = threading.get_ident()
        with self._lock:
            if me in self._since:
                self._since[me] = self._clock()

    def running(self) -> int:
        """Calls running in a worker now."""
        with self._lock:
            return len(self._since)

    def stalled_s(self) -> float:
        """Seconds the oldest running call has gone without finishing or progress (0: none)."""
        with self._lock:
            oldest = min(self._since.values(), default=None)
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)
