"""The model downloads the controller has started: one per (endpoint, revision).

The controller never awaits a download. A start that needs an `hf://` model that is not on
this node yet starts its download (`artifacts.download.HubDownload`, a child process) and
returns; each later pass looks at it again (`path`) until it has a folder or a failure. A
download nobody needs any more (the endpoint was deleted, paused, failed or moved to another
revision) is cancelled at the end of the pass (`retain`), and every one when the controller
stops (`cancel_all`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
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


class Downloads:
    def __init__(self, cache: NodeCache, settings: DownloadSettings, event: EventSink) -> None:
        self.cache = cache
        self.settings = settings
        self._event = event
        self._jobs: dict[Key, HubDownload] = {}
        self._fetched: dict[Key, int] = {}  # bytes a finished download had last measured

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
        """What the download of `key` has fetched so far, for the endpoint's status reason;
        None when there is none (the Hub does not tell the total before the end)."""
        job = self._jobs.get(key)
        if job is None:
            return None
        return f"downloading {job.label}: {_size(job.bytes_done)} so far"

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
            raise
        if done is not None:
            self._fetched[key] = job.bytes_done
            del self._jobs[key]
        return done

    def retain(self, wanted: Iterable[Key]) -> None:
        """Cancel every download whose (endpoint, revision) is not in `wanted`."""
        keep = set(wanted)
        for key in [k for k in self._jobs if k not in keep]:
            log.info("%s: cancelling the download of %s", key[0], self._jobs[key].label)
            self._jobs.pop(key).cancel()

    def cancel_all(self) -> None:
        self.retain(())


def _size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"
