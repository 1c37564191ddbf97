"""The models on this node: where the local backend finds (or fetches) a replica's files.

The controller hands the backend a model reference (`base.ModelSource`), never a path; this
is where the local backend turns one into a folder on this machine:

- a repository model ("iris:3") is the artifact store's folder the reference carries
  (`location`), checked once per server process against the digest the store recorded
  (`artifacts.hashing.sha256_tree`): a folder that is missing or holds other files is a
  `LoadError` (the revision cannot run here), never a replica serving the wrong model;
- an `hf://` model is fetched into the node cache (`artifacts.sources.NodeCache`) by a
  download child process (`artifacts.download.HubDownload`), which `prepare` starts and
  then looks at without waiting; with the Hub offline (`HF_HUB_OFFLINE`) only the cache is
  read, when the replica starts;
- an `s3://` model likewise (`artifacts.s3_download.S3Download`): the child lists the
  prefix, pins the listing's digest and downloads into the node cache, or re-verifies a
  copy already there (`artifacts.s3`).

One download per model and credentials, whichever endpoints want it (an endpoint's
`model_source.token_secret`, or its S3 keys, give the download its own, in the child's
environment).
A download nobody wants any more is cancelled (`retain`), and what was fetched is forgotten
with it, so a later `prepare` of a moving reference (a branch) looks at the Hub again.
Thread-safe: `prepare` and `retain` run in a worker thread of the controller's loop,
`path` in a start's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from podium.artifacts.download import ChildDownload, HubDownload
from podium.artifacts.hashing import sha256_tree
from podium.artifacts.s3 import Limits as S3Limits
from podium.artifacts.s3_download import S3Download
from podium.artifacts.sources import NodeCache
from podium.backends.base import ModelSource, Preparation, Readiness
from podium.core import redact
from podium.core.errors import LoadError, PodiumError, Unavailable
from podium.core.settings import DownloadSettings
from podium.core.spec import HfRef, RepoRef, S3Ref, parse_model_ref

log = logging.getLogger("podium.backends")


class ModelCache:
    def __init__(self, cache: NodeCache, settings: DownloadSettings) -> None:
        self.cache = cache
        self.settings = settings
        self._lock = threading.Lock()
        self._jobs: dict[ModelSource, ChildDownload] = {}
        self._done: dict[ModelSource, tuple[Path, Preparation]] = {}  # fetched: folder, report
        self._failed: dict[ModelSource, Preparation] = {}
        self._verified: set[tuple[str, str]] = set()  # (folder, digest) checked

    # ------------------------------------------------------------------ prepare

    def prepare(self, model: ModelSource) -> Preparation:
        """READY, FETCHING with the download's progress, or FAILED with its reason. The
        first call for an `hf://` or `s3://` model not fetched yet starts its download."""
        try:
            ref = parse_model_ref(model.ref)
        except PodiumError as e:
            return Preparation(Readiness.FAILED, label=model.ref, reason=str(e))
        if isinstance(ref, RepoRef) or (isinstance(ref, HfRef) and self.cache.hf_offline):
            return Preparation.ready()  # the store's folder, or the cache only: at start
        with self._lock:
            if (done := self._done.get(model)) is not None:
                return done[1]
            if (failed := self._failed.get(model)) is not None:
                return failed
            job = self._jobs.get(model)
            if job is None:
                try:
                    job = self._start(ref, model)
                except PodiumError as e:
                    return self._fail(model, ref, e)
                self._jobs[model] = job
                return self._fetching(job)
            try:
                resolved = job.check()
            except PodiumError as e:
                del self._jobs[model]
                return self._fail(model, ref, e)
            if resolved is None:
                return self._fetching(job)
            del self._jobs[model]
            ready = Preparation(
                Readiness.READY,
                label=job.label,
                origin=job.endpoint,
                bytes_done=job.bytes_done,
                bytes_total=job.bytes_total,
                resolved=resolved.ref,
            )
            self._done[model] = (resolved.path, ready)
            return ready

    def _start(self, ref: HfRef | S3Ref, model: ModelSource) -> ChildDownload:
        bounds = self.settings
        job: ChildDownload
        if isinstance(ref, S3Ref):
            job = S3Download(
                self.cache,
                ref,
                keys=model.s3_keys,
                server_credentials=bounds.s3_server_credentials,
                limits=S3Limits(max_bytes=bounds.max_bytes, max_files=bounds.max_files),
                stall_s=bounds.stall_s,
                connect_timeout_s=bounds.connect_timeout_s,
                read_timeout_s=bounds.read_timeout_s,
            )
        else:
            job = HubDownload(
                self.cache,
                ref,
                token=model.token,
                stall_s=bounds.stall_s,
                connect_timeout_s=bounds.connect_timeout_s,
                read_timeout_s=bounds.read_timeout_s,
            )
        job.start()
        return job

    @staticmethod
    def _fetching(job: ChildDownload) -> Preparation:
        return Preparation(
            Readiness.FETCHING,
            label=job.label,
            origin=job.endpoint,
            bytes_done=job.bytes_done,
            bytes_total=job.bytes_total,
        )

    def _fail(self, model: ModelSource, ref: HfRef | S3Ref, e: PodiumError) -> Preparation:
        reason = redact.urls_in(str(e))  # HubDownload redacts too; reasons never leak
        failed = Preparation(Readiness.FAILED, label=str(ref), reason=reason)
        self._failed[model] = failed
        return failed

    def retain(self, models: Iterable[ModelSource]) -> None:
        """Cancel the downloads of models not in `models`; forget what was fetched or
        failed for them."""
        keep = set(models)
        with self._lock:
            for model in [m for m in self._jobs if m not in keep]:
                job = self._jobs.pop(model)
                log.info("cancelling the download of %s: no longer wanted", job.label)
                job.cancel()
            for table in (self._done, self._failed):
                for model in [m for m in table if m not in keep]:
                    del table[model]

    def cancel_all(self) -> None:
        self.retain(())

    def fetching(self, model: ModelSource) -> ChildDownload | None:
        """The download of `model` in flight (tests look at its process)."""
        with self._lock:
            return self._jobs.get(model)

    # ------------------------------------------------------------------ path

    def path(self, model: ModelSource) -> Path:
        """The model's folder on this node, for a replica's start (blocking: a digest check
        or an offline cache lookup). `LoadError` when the model is not what it should be
        or cannot be found here; `Unavailable` when it is not fetched (yet)."""
        try:
            ref = parse_model_ref(model.ref)
        except PodiumError as e:
            raise LoadError(f"model {model.ref} cannot start: {e}", field="model") from e
        if isinstance(ref, RepoRef):
            return self._repository_folder(model)
        with self._lock:
            done = self._done.get(model)
        if done is not None:
            return done[0]
        if isinstance(ref, HfRef) and self.cache.hf_offline:
            try:
                return self.cache.resolve_hf(ref).path
            except PodiumError as e:
                raise LoadError(str(e), field="model") from e
        raise Unavailable(f"model {model.ref} is not on this node yet", field="model")

    def _repository_folder(self, model: ModelSource) -> Path:
        if model.location is None:
            raise LoadError(f"model {model.ref} has no files in the repository", field="model")
        folder = Path(model.location)
        key = (str(folder), model.digest or "")
        with self._lock:
            if key in self._verified:
                return folder
        if model.digest is None:
            return folder  # nothing to check it against: the replica's load says
        if not folder.exists():
            raise LoadError(f"model {model.ref} has no files here ({folder})", field="model")
        try:
            found = sha256_tree(folder).sha256
        except OSError as e:
            raise LoadError(f"model {model.ref} cannot be read: {e}", field="model") from e
        if found != model.digest:
            raise LoadError(
                f"model {model.ref} at {folder} does not match its digest "
                f"(sha256 {found[:12]}…, the repository recorded {model.digest[:12]}…)",
                field="model",
            )
        with self._lock:
            self._verified.add(key)
        return folder
