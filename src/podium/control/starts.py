"""Replica starts in flight: the controller pass launches them and never waits for them.

A start (`Backend.start`: a fork from a zygote, a spawn, an external server's checks, on
this machine or another) runs as an asyncio task on the controller's loop, one batch per
(endpoint, pass): the replicas a pass decided to start for one endpoint are started one
after another in that batch, and a failure ends the batch (as the old in-pass loop did), so
crash accounting is unchanged. Batches of different endpoints run side by side, at most
`WORKERS` at once (a semaphore); the backend keeps its own blocking work off the loop.

While a batch runs, its replicas are *starting* for the reconciler (they count toward the
desired count and the endpoint is not deleted under them). The pass gives the batches it
launched `GRACE_S` to finish, so a fast start is tracked in the same pass as before; a
longer one is picked up by a later pass, which its end wakes (`Starts.done`). A start the
plan no longer wants (paused, deleted, failed, an older revision) is marked cancelled: the
replicas of its batch not started yet are skipped; one already started is tracked and the
next plan stops it like any starting replica it does not want.

A model that is not on the node yet is not a start: the pass asks the backend whether it is
ready (`control.preparing`) and launches starts only once it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from podium.backends.base import ObservedReplica

WORKERS = 4  # batches (endpoints) starting at once
GRACE_S = 0.25  # how long a pass waits for the batches it launched (then moves on)
CLOSE_WAIT_S = 5.0  # how long a closing controller lets a replica start under way finish

Wake = Callable[[str], None]


@dataclass(slots=True)
class BatchResult:
    """What a batch did: the replicas it started (in order) and the exception that ended
    it early (None: every replica not cancelled was started)."""

    started: list[ObservedReplica] = field(default_factory=list)
    error: BaseException | None = None


@dataclass(slots=True)
class Batch:
    endpoint: str
    revision: int
    replica_ids: list[str]
    decided: float  # wall clock when the pass decided these starts
    since: float  # monotonic, the same moment
    task: asyncio.Task[BatchResult] = field(init=False)
    cancelled: set[str] = field(default_factory=set)  # read by the batch before each start


class Starts:
    """The batches of replica starts in flight (see the module docstring)."""

    def __init__(self, wake: Wake, *, workers: int = WORKERS) -> None:
        self._wake = wake
        self._workers = workers
        self._slots: asyncio.Semaphore | None = None  # made on the controller's loop
        self._batches: list[Batch] = []
        self._launched: list[Batch] = []  # in this pass, for `settle`

    def launch(
        self,
        endpoint: str,
        revision: int,
        replica_ids: list[str],
        *,
        decided: float,
        since: float,
        work: Callable[[Batch], Awaitable[BatchResult]],
    ) -> Batch:
        """Run `work(batch)` as a task once a slot is free; its end wakes the controller
        for `endpoint`."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._workers)
        batch = Batch(endpoint, revision, list(replica_ids), decided, since)
        batch.task = asyncio.get_running_loop().create_task(
            self._run(self._slots, batch, work), name=f"podium-start-{endpoint}"
        )
        batch.task.add_done_callback(lambda _: self._wake(endpoint))
        self._batches.append(batch)
        self._launched.append(batch)
        return batch

    @staticmethod
    async def _run(
        slots: asyncio.Semaphore, batch: Batch, work: Callable[[Batch], Awaitable[BatchResult]]
    ) -> BatchResult:
        async with slots:
            return await work(batch)

    def pending(self, endpoint: str) -> list[Batch]:
        return [b for b in self._batches if b.endpoint == endpoint]

    def cancel(self, replica_id: str) -> bool:
        """Mark a replica of a pending batch as not wanted; False if no batch holds it."""
        for b in self._batches:
            if replica_id in b.replica_ids:
                b.cancelled.add(replica_id)
                return True
        return False

    def cancel_endpoints(self, keep: Iterable[str]) -> None:
        """Cancel every pending start of an endpoint not in `keep` (deleted ones)."""
        wanted = set(keep)
        for b in self._batches:
            if b.endpoint not in wanted:
                b.cancelled.update(b.replica_ids)

    async def settle(self, grace_s: float = GRACE_S) -> None:
        """Give the batches launched since the last call up to `grace_s` to finish."""
        launched, self._launched = self._launched, []
        waiting = [b.task for b in launched if not b.task.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=grace_s)

    def done(self) -> list[tuple[Batch, BatchResult]]:
        """The batches that have finished since the last call, in launch order."""
        out: list[tuple[Batch, BatchResult]] = []
        for b in [b for b in self._batches if b.task.done()]:
            self._batches.remove(b)
            if b.task.cancelled():
                continue
            exc = b.task.exception()
            out.append((b, BatchResult(error=exc) if exc is not None else b.task.result()))
        return out

    async def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """The controller stops: replicas not started yet are skipped; a start under way
        gets `wait_s` to finish (its replica is then the backend's, which stops it when it
        closes), then its task is cancelled, and awaited (up to `wait_s` more) so that it
        has ended before the backend closes. A backend's start that runs on in a thread of
        its own is the backend's to refuse once it closes (`LocalBackend`)."""
        batches, self._batches = self._batches, []
        for b in batches:
            b.cancelled.update(b.replica_ids)
        running = [b.task for b in batches if not b.task.done()]
        if running:
            await asyncio.wait(running, timeout=wait_s)
        stuck = [task for task in running if not task.done()]
        for task in stuck:
            task.cancel()
        if stuck:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*stuck, return_exceptions=True), wait_s)
