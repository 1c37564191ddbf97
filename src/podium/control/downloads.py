"""The model downloads the controller has started: one per (endpoint, revision).

The controller never awaits a download. A start that needs an `hf://` model that is not on
this node yet starts its download (`artifacts.download.HubDownload`, a child process) and
returns; each later pass looks at it again (`path`) until it has a folder or a failure. A
download nobody needs any more (the endpoint was deleted, paused, failed or moved to another
revision) is cancelled at the end of the pass (`retain`), and every one when the controller
stops (`cancel_all`).

Progress shows in two places: the endpoint's status reason (`describe`, every pass:
`12.3 MiB of 45.6 MiB (27%)` when the Hub told the total, `12.3 MiB so far` otherwise), and
`download_progress` events, few enough not to drown the others: one each time another
tenth of the total has arrived, or, with no total, one every `PROGRESS_EVERY_S` while data
arrives. `download_done` says how much was fetched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from podium.artifacts.download import HubDownload
from podium.artifacts.sources import NodeCache, ResolvedSource
from podium.core import redact
from podium.core.errors import PodiumError
from podium.core.phases import EventKind
from podium.core.settings import DownloadSettings
from podium.core.spec import HfRef

log = logging.getLogger("podium.control")

Key = tuple[str, int]  # (endpoint, revision)
EventSink = Callable[..., None]  # (endpoint, kind, message, **data): the actuator's `event`
PROGRESS_EVERY_S = 30.0  # between progress events of a download whose total is unknown
PROGRESS_STEPS = 10  # progress events per download whose total is known (every 10%)


@dataclass(slots=True)
class _Reported:
    """The last progress event of one download."""

    at: float  # monotonic
    bytes: int = 0
    step: int = 0  # tenths of the total


class Downloads:
    def __init__(
        self,
        cache: NodeCache,
        settings: DownloadSettings,
        event: EventSink,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.settings = settings
        self._event = event
        self._monotonic = monotonic
        self._jobs: dict[Key, HubDownload] = {}
        self._fetched: dict[Key, int] = {}  # bytes a finished download had last measured
        self._reported: dict[Key, _Reported] = {}

    def path(self, key: Key, ref: HfRef) -> Path | None:
        """The model folder of `ref` for (endpoint, revision) `key`: None while it is being
        downloaded (the first call starts the download); raises why the download failed.
        Each step is an event."""
        endpoint, revision = key
        if key not in self._jobs:
            job = self.start(key, ref)
            self._event(
                endpoint,
                EventKind.DOWNLOAD_STARTED,
                f"downloading {job.label} from {job.endpoint}",
                model=str(ref),
                revision=revision,
            )
            return None
        try:
            done = self.poll(key)
        except PodiumError as e:
            reason = redact.urls_in(str(e))  # HubDownload redacts too; events never leak
            self._event(
                endpoint,
                EventKind.DOWNLOAD_FAILED,
                f"download failed: {reason}",
                model=str(ref),
                revision=revision,
                reason=reason,
            )
            raise
        if done is None:
            self._report_progress(key, ref)
            return None
        fetched = self._fetched.pop(key, 0)
        self._event(
            endpoint,
            EventKind.DOWNLOAD_DONE,
            f"downloaded {done.ref} ({_size(fetched)})",
            model=done.ref,
            revision=revision,
            bytes=fetched,
        )
        return done.path

    def describe(self, key: Key) -> str | None:
        """What the download of `key` has fetched so far (of its total, when the Hub told
        it), for the endpoint's status reason; None when there is no download."""
        job = self._jobs.get(key)
        if job is None:
            return None
        return f"downloading {job.label}: {progress(job.bytes_done, job.bytes_total)}"

    def _report_progress(self, key: Key, ref: HfRef) -> None:
        """A `download_progress` event when another tenth of the total has arrived, or, with
        no total, when data arrived and the last one is `PROGRESS_EVERY_S` old."""
        job = self._jobs.get(key)
        if job is None:
            return
        now = self._monotonic()
        last = self._reported.setdefault(key, _Reported(at=now))
        done, total = job.bytes_done, job.bytes_total
        if total:
            step = min(done, total) * PROGRESS_STEPS // total
            if step <= last.step or step >= PROGRESS_STEPS:  # 100%: `download_done` says it
                return
        else:
            step = 0
            if done <= last.bytes or now - last.at < PROGRESS_EVERY_S:
                return
        self._reported[key] = _Reported(at=now, bytes=done, step=step)
        data: dict[str, object] = {"model": str(ref), "revision": key[1], "bytes": done}
        if total:
            data.update(total=total, percent=_percent(done, total))
        self._event(
            key[0],
            EventKind.DOWNLOAD_PROGRESS,
            f"downloading {job.label}: {progress(done, total)}",
            **data,
        )

    def __contains__(self, key: Key) -> bool:
        return key in self._jobs

    def start(self, key: Key, ref: HfRef) -> HubDownload:
        job = HubDownload(
            self.cache,
            ref,
            stall_s=self.settings.stall_s,
            connect_timeout_s=self.settings.connect_timeout_s,
            read_timeout_s=self.settings.read_timeout_s,
        )
        job.start()
        self._jobs[key] = job
        return job

    def poll(self, key: Key) -> ResolvedSource | None:
        """None while the download of `key` runs; its result once done (then forgotten);
        raises (a `PodiumError` naming the reason) when it failed or stalled."""
        job = self._jobs[key]
        try:
            done = job.check()
        except BaseException:
            del self._jobs[key]
            self._reported.pop(key, None)
            raise
        if done is not None:
            self._fetched[key] = job.bytes_done
            del self._jobs[key]
            self._reported.pop(key, None)
        return done

    def retain(self, wanted: Iterable[Key]) -> None:
        """Cancel every download whose (endpoint, revision) is not in `wanted`."""
        keep = set(wanted)
        for key in [k for k in self._jobs if k not in keep]:
            log.info("%s: cancelling the download of %s", key[0], self._jobs[key].label)
            self._jobs.pop(key).cancel()
            self._reported.pop(key, None)

    def cancel_all(self) -> None:
        self.retain(())


def progress(done: int, total: int | None) -> str:
    """`12.3 MiB of 45.6 MiB (27%)`, or `12.3 MiB so far` when the total is not known."""
    if not total:
        return f"{_size(done)} so far"
    return f"{_size(min(done, total))} of {_size(total)} ({_percent(done, total)}%)"


def _percent(done: int, total: int) -> int:
    return min(done, total) * 100 // total


def _size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    if n < 1024 * 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MiB"
    return f"{n / 1024 / 1024 / 1024:.1f} GiB"
