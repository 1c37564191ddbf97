"""Models being prepared: the controller asks the backend, never waits, and tells people.

Fetching a model onto the node(s) that will run its replicas is the backend's job
(`Backend.prepare`: the local backend downloads an `hf://` model into its node cache, a
remote one may answer ready at once and let the replica fetch it). Each pass asks again
for every (endpoint, revision) that wants to start replicas, and starts them only once the
model is ready: the controller never waits for a fetch. A fetch nobody needs any more (the
endpoint was deleted, paused, failed or moved to another revision) is released at the end
of the pass (`retain`).

What people see, per (endpoint, revision): `download_started` when the backend first says
it is fetching, then progress in the endpoint's status reason (`describe`, every pass:
`12.3 MiB of 45.6 MiB (27%)` when the total is known, `12.3 MiB so far` otherwise) and in
`download_progress` events, few enough not to drown the others: one each time another
tenth of the total has arrived, or, with no total, one every `PROGRESS_EVERY_S` while data
arrives. `download_done` says how much was fetched; `download_failed` why it failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from podium.backends.base import Backend, ModelSource, Preparation, Readiness
from podium.core import redact
from podium.core.errors import Unavailable
from podium.core.phases import EventKind

Key = tuple[str, int]  # (endpoint, revision)
EventSink = Callable[..., None]  # (endpoint, kind, message, **data): the journal's `event`
PROGRESS_EVERY_S = 30.0  # between progress events of a download whose total is unknown
PROGRESS_STEPS = 10  # progress events per download whose total is known (every 10%)


@dataclass(slots=True)
class _Watched:
    """One (endpoint, revision) whose model the backend is fetching."""

    model: ModelSource
    last: Preparation
    reported_at: float  # monotonic, the last progress event (or the start)
    reported_bytes: int = 0
    reported_step: int = 0  # tenths of the total


def _redacted(prep: Preparation) -> Preparation:
    """What a backend reports, with credentials taken out of any URL in it (a remote
    backend's origin may be a signed URL): it goes into events and the status reason."""
    return replace(
        prep,
        label=redact.urls_in(prep.label),
        origin=redact.url(prep.origin) if prep.origin else prep.origin,
        reason=redact.urls_in(prep.reason) if prep.reason else prep.reason,
        resolved=redact.urls_in(prep.resolved) if prep.resolved else prep.resolved,
    )


class Preparing:
    def __init__(
        self,
        backend: Backend,
        event: EventSink,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self._event = event
        self._monotonic = monotonic
        self._watched: dict[Key, _Watched] = {}
        self._wanted: dict[Key, ModelSource] = {}  # asked about, and still wanted
        self._asked: set[ModelSource] = set()  # asked about since the last `retain`
        self._kept: set[ModelSource] | None = None  # what the backend was last told

    async def ready(self, key: Key, model: ModelSource) -> bool:
        """Whether the model of (endpoint, revision) `key` is ready to start replicas;
        raises `Unavailable` with the reason when it cannot be fetched. Each step of a
        fetch is an event."""
        self._wanted[key] = model
        self._asked.add(model)
        prep = await self.backend.prepare(model)
        if prep.state is Readiness.READY and key not in self._watched:
            return True  # the common case: nothing fetched, nothing to tell
        prep = _redacted(prep)
        endpoint, revision = key
        watched = self._watched.get(key)
        if prep.state is Readiness.FETCHING:
            if watched is None or watched.model != model:
                self._watched[key] = _Watched(model, prep, reported_at=self._monotonic())
                self._event(
                    endpoint,
                    EventKind.DOWNLOAD_STARTED,
                    f"downloading {prep.label} from {prep.origin}",
                    model=model.ref,
                    revision=revision,
                )
            else:
                watched.last = prep
                self._report_progress(key, watched)
            return False
        self._watched.pop(key, None)
        if prep.state is Readiness.FAILED:
            reason = prep.reason or "unknown"
            self._event(
                endpoint,
                EventKind.DOWNLOAD_FAILED,
                f"download failed: {reason}",
                model=model.ref,
                revision=revision,
                reason=reason,
            )
            raise Unavailable(reason, field="model")
        if watched is not None:  # it was fetched while we watched
            self._event(
                endpoint,
                EventKind.DOWNLOAD_DONE,
                f"downloaded {prep.resolved or prep.label} ({size(prep.bytes_done)})",
                model=prep.resolved or model.ref,
                revision=revision,
                bytes=prep.bytes_done,
            )
        return True

    def describe(self, key: Key) -> str | None:
        """What the fetch for `key` has brought so far (of its total, when known), for the
        endpoint's status reason; None when nothing is being fetched for it."""
        watched = self._watched.get(key)
        if watched is None:
            return None
        last = watched.last
        return f"downloading {last.label}: {progress(last.bytes_done, last.bytes_total)}"

    def _report_progress(self, key: Key, w: _Watched) -> None:
        """A `download_progress` event when another tenth of the total has arrived, or, with
        no total, when data arrived and the last one is `PROGRESS_EVERY_S` old."""
        now = self._monotonic()
        done, total = w.last.bytes_done, w.last.bytes_total
        if total:
            step = min(done, total) * PROGRESS_STEPS // total
            if step <= w.reported_step or step >= PROGRESS_STEPS:  # 100%: `download_done`
                return
        else:
            step = 0
            if done <= w.reported_bytes or now - w.reported_at < PROGRESS_EVERY_S:
                return
        w.reported_at, w.reported_bytes, w.reported_step = now, done, step
        data: dict[str, object] = {"model": w.model.ref, "revision": key[1], "bytes": done}
        if total:
            data.update(total=total, percent=_percent(done, total))
        self._event(
            key[0],
            EventKind.DOWNLOAD_PROGRESS,
            f"downloading {w.last.label}: {progress(done, total)}",
            **data,
        )

    def __contains__(self, key: Key) -> bool:
        return key in self._watched

    async def retain(self, wanted: Iterable[Key]) -> None:
        """End of a pass: only the models of `wanted` (endpoint, revision) pairs that were
        asked about are still needed; the backend releases the others. Told only when that
        changes something (most passes ask nothing new and drop nothing)."""
        keep = set(wanted)
        self._wanted = {k: m for k, m in self._wanted.items() if k in keep}
        self._watched = {k: w for k, w in self._watched.items() if k in keep}
        models = set(self._wanted.values())
        asked, self._asked = self._asked, set()
        if models == self._kept and asked <= models:
            return
        self._kept = models
        await self.backend.retain(models)

    async def release_all(self) -> None:
        await self.retain(())


def progress(done: int, total: int | None) -> str:
    """`12.3 MiB of 45.6 MiB (27%)`, or `12.3 MiB so far` when the total is not known."""
    if not total:
        return f"{size(done)} so far"
    return f"{size(min(done, total))} of {size(total)} ({_percent(done, total)}%)"


def _percent(done: int, total: int) -> int:
    return min(done, total) * 100 // total


def size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    if n < 1024 * 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MiB"
    return f"{n / 1024 / 1024 / 1024:.1f} GiB"
