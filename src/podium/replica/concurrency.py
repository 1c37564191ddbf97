"""Per-replica admission: at most `max_concurrency` predictions run, `max_queue` wait.

A request beyond both limits is refused at once (`Busy`, rendered as 503 with
`Retry-After: 1` and `x-podium-refused: replica`, since none of its work was done) rather
than queued without bound: the gateway then tries another replica. Waiters are served
first come, first served; a freed slot passes directly to the next waiter, so a newcomer
cannot overtake the queue.

Everything here runs on the event loop thread (no locks needed). A waiter whose task is
cancelled (its client disconnected) leaves the queue, or hands its slot on if it was
granted one at the same moment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from podium.core.errors import Retryable


class Busy(Retryable):
    """The limiter's refusal: every slot taken and the queue full. Only this refusal of a
    replica carries `x-podium-refused` (`replica/http.py`); a `Retryable` raised by a
    model's own code does not, as that code may have done something."""


class Limiter:
    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_queue < 0:
            raise ValueError("max_queue must not be negative")
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        # High-water marks since the replica started (`/podium/info`): what a sampler
        # polling the current counts can miss.
        self.max_in_flight = 0
        self.max_queued = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def busy_message(self) -> str:
        return f"replica busy: {self._in_flight} in flight and {len(self._waiters)} queued"

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody is waiting; never blocks."""
        if self._in_flight < self.max_concurrency and not self._waiters:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return True
        return False

    def check_room(self) -> None:
        """Busy when every slot is taken and the queue is full."""
        if self._in_flight >= self.max_concurrency and len(self._waiters) >= self.max_queue:
            raise Busy(self.busy_message(), retry_after=1.0)

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if needed; Busy when the queue is full."""
        if self.try_acquire():
            return
        self.check_room()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.max_queued = max(self.max_queued, len(self._waiters))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted and cancelled at once: pass the slot on
            else:
                self._remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back: to the first live waiter, else to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._in_flight -= 1

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
