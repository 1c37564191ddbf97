"""The model downloads the controller has started: one per (endpoint, revision).

The controller never awaits a download. A start that needs an `hf://` model that is not on
this node yet starts its download (`artifacts.download.HubDownload`, a child process) and
returns; each later pass looks at it again (`poll`) until it has a folder or a failure. A
download nobody needs any more (the endpoint was deleted, paused, failed or moved to another
revision) is cancelled at the end of the pass (`retain`), and every one when the controller
stops (`cancel_all`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from podium.artifacts.download import HubDownload
from podium.artifacts.sources import NodeCache, ResolvedSource
from podium.core.settings import DownloadSettings
from podium.core.spec import HfRef

log = logging.getLogger("podium.control")

Key = tuple[str, int]  # (endpoint, revision)


class Downloads:
    def __init__(self, cache: NodeCache, settings: DownloadSettings) -> None:
        self.cache = cache
        self.settings = settings
        self._jobs: dict[Key, HubDownload] = {}

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
