"""Replica starts in flight: the controller pass launches them and never waits for them.

A start (resolving a cached `hf://` model offline, then `Backend.start`: a fork from a
zygote, a spawn, an external server's checks) runs in a small thread pool, one batch per
(endpoint, pass): the replicas a pass decided to start for one endpoint are started one
after another in that batch, and a failure ends the batch (as the old in-pass loop did), so
crash accounting is unchanged. Batches of different endpoints run side by side, at most
`WORKERS` at once.

While a batch runs, its replicas are *starting* for the reconciler (they count toward the
desired count and the endpoint is not deleted under them). The pass gives the batches it
launched `GRACE_S` to finish, so a fast start is tracked in the same pass as before; a
longer one is picked up by a later pass, which its end wakes (`Starts.done`). A start the
plan no longer wants (paused, deleted, failed, an older revision) is marked cancelled: the
replicas of its batch not started yet are skipped; one already started is tracked and the
next plan stops it like any starting replica it does not want.

A `hf://` download that is not in the node cache yet is not a start: `control.downloads`
runs it in a child process and the pass looks at it without waiting ("resolving").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from podium.backends.base import ObservedReplica

WORKERS = 4  # batches (endpoints) starting at once
GRACE_S = 0.25  # how long a pass waits for the batches it launched (then moves on)

Wake = Callable[[str], None]


@dataclass(slots=True)
class BatchResult:
    """What a batch did: the model folder it used, the replicas it started (in order) and
    the exception that ended it early (None: every replica not cancelled was started)."""

    path: Path | None = None
    started: list[ObservedReplica] = field(default_factory=list)
    error: BaseException | None = None


@dataclass(slots=True)
class Batch:
    endpoint: str
    revision: int
    replica_ids: list[str]
    decided: float  # wall clock when the pass decided these starts
    since: float  # monotonic, the same moment
    future: asyncio.Future[BatchResult] = field(init=False)
    cancelled: set[str] = field(default_factory=set)  # read by the worker thread

    def waiting(self) -> list[str]:
        """The replicas of this batch the plan still counts as starting."""
        return [rid for rid in self.replica_ids if rid not in self.cancelled]


class Starts:
    """The batches of replica starts in flight (see the module docstring)."""

    def __init__(self, wake: Wake, *, workers: int = WORKERS) -> None:
        self._wake = wake
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="podium-start")
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
        work: Callable[[Batch], BatchResult],
    ) -> Batch:
        """Run `work(batch)` in the pool; its end wakes the controller for `endpoint`."""
        batch = Batch(endpoint, revision, list(replica_ids), decided, since)
        batch.future = asyncio.get_running_loop().run_in_executor(self._pool, work, batch)
        batch.future.add_done_callback(lambda _: self._wake(endpoint))
        self._batches.append(batch)
        self._launched.append(batch)
        return batch

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
        waiting = [b.future for b in launched if not b.future.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=grace_s)

    def done(self) -> list[tuple[Batch, BatchResult]]:
        """The batches that have finished since the last call, in launch order."""
        out: list[tuple[Batch, BatchResult]] = []
        for b in [b for b in self._batches if b.future.done()]:
            self._batches.remove(b)
            if b.future.cancelled():
                continue
            exc = b.future.exception()
            out.append((b, BatchResult(error=exc) if exc is not None else b.future.result()))
        return out

    def close(self) -> None:
        """The controller stops: batches not begun are dropped, running ones end on their
        own (the backend knows their replicas and stops them when it closes)."""
        for b in self._batches:
            b.cancelled.update(b.replica_ids)
            with contextlib.suppress(Exception):
                b.future.cancel()
        self._batches.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
