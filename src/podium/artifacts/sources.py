"""Model sources outside the repository: `hf://ORG/NAME[@REVISION]` via a node cache.

`NodeCache.resolve_hf` turns a Hugging Face reference into a local folder (a snapshot of
the huggingface_hub cache) and pins it to a commit sha, so a revision's `model_ref` is
`hf://org/name@<sha>` and every replica loads the same files.

Configuration comes from the `env` mapping given at construction (default: os.environ at
that moment), never from what huggingface_hub read when it was imported:

  HF_HUB_CACHE / HF_HOME   cache folder (HF_HUB_CACHE, else HF_HOME/hub, else cache_dir/hf)
  HF_ENDPOINT              the only Hub that models are fetched from (default huggingface.co)
  HF_TOKEN                 sent to that endpoint only; no other token (not even a stored
                           `hf auth login` one) is used, and it is never logged
  HF_HUB_OFFLINE=1         no network at all: only what the cache holds resolves

Every failure becomes a `core.errors` class naming the repo and revision (field="model").
Downloading blocks; call it from a worker thread in async code.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    DisabledRepoError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    IncompleteSnapshotError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from podium.core import redact
from podium.core.errors import Invalid, NotFound, PodiumError, Unavailable
from podium.core.spec import HfRef

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
_COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
_TRUE = frozenset({"1", "ON", "YES", "TRUE"})


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    path: Path  # local folder holding the model's files
    ref: str  # pinned reference, e.g. "hf://org/name@<commit sha>"
    revision: str  # the commit sha


class NodeCache:
    """Model files fetched onto this node, shared by every replica on it."""

    def __init__(self, cache_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.cache_dir = cache_dir
        self._env = dict(os.environ if env is None else env)

    # ------------------------------------------------------------------ configuration

    @property
    def env(self) -> Mapping[str, str]:
        """The environment this cache was configured from (a download process gets it)."""
        return self._env

    @property
    def hf_cache(self) -> Path:
        """The huggingface_hub cache folder (models--ORG--NAME/… live here)."""
        if value := self._env.get("HF_HUB_CACHE"):
            return _expand(value)
        if value := self._env.get("HF_HOME"):
            return _expand(value) / "hub"
        return self.cache_dir / "hf"

    @property
    def hf_endpoint(self) -> str:
        """The only Hub models are downloaded from; a malformed HF_ENDPOINT is refused."""
        value = (self._env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username
            or parts.password
            or parts.query
            or parts.fragment
        ):
            raise Invalid(
                "HF_ENDPOINT must be an http(s) URL without credentials or query, not "
                f"{redact.url(value)!r} (credentials and query not shown)",
                field="HF_ENDPOINT",
            )
        return value

    @property
    def hf_offline(self) -> bool:
        return any(
            self._env.get(name, "").strip().upper() in _TRUE
            for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
        )

    # ------------------------------------------------------------------ resolution

    def resolve_hf(self, ref: HfRef) -> ResolvedSource:
        """Download (or find in the cache) a snapshot of `ref`; pin it to its commit sha."""
        revision = ref.revision or DEFAULT_REVISION
        _check_revision(ref, revision)
        label = f"hf://{ref.repo_id}@{revision}"
        endpoint = self.hf_endpoint
        cache = self.hf_cache
        offline = self.hf_offline
        log.info("resolving %s from %s (cache %s, offline %s)", label, endpoint, cache, offline)
        try:
            folder = snapshot_download(
                ref.repo_id,
                repo_type="model",
                revision=revision,
                cache_dir=cache,
                endpoint=endpoint,
                token=self._env.get("HF_TOKEN") or False,
                local_files_only=offline,
            )
        except Exception as e:  # one seam: whatever huggingface_hub raises becomes ours
            raise self._translate(e, ref, revision, label, endpoint, offline) from None
        path = Path(folder)
        sha = path.name
        expected_parent = cache / f"models--{ref.repo_id.replace('/', '--')}" / "snapshots"
        if not _COMMIT_SHA.match(sha) or path.parent.resolve() != expected_parent.resolve():
            raise Unavailable(
                f"the Hugging Face cache gave an unexpected folder for {label}: {path}",
                field="model",
            )
        return ResolvedSource(path=path, ref=f"hf://{ref.repo_id}@{sha}", revision=sha)

    def _translate(
        self,
        e: Exception,
        ref: HfRef,
        revision: str,
        label: str,
        endpoint: str,
        offline: bool,
    ) -> PodiumError:
        repo = ref.repo_id
        if isinstance(e, RevisionNotFoundError):
            return NotFound(
                f"revision {revision!r} of Hugging Face model {repo!r} not found on {endpoint}",
                field="model",
            )
        if isinstance(e, GatedRepoError):
            return NotFound(
                f"Hugging Face model {repo!r} is gated: accept its conditions on the Hub and "
                "set HF_TOKEN to a token with access",
                field="model",
            )
        if isinstance(e, RepositoryNotFoundError | DisabledRepoError):
            return NotFound(
                f"Hugging Face model {repo!r} not found on {endpoint} (or it is private and "
                "HF_TOKEN is missing or has no access to it)",
                field="model",
            )
        if isinstance(e, IncompleteSnapshotError):
            return Unavailable(
                f"the cached copy of {label} in {self.hf_cache} is incomplete and the Hub "
                f"cannot be reached{' (HF_HUB_OFFLINE is set)' if offline else ''}",
                field="model",
            )
        if isinstance(e, LocalEntryNotFoundError):
            if offline:
                return Unavailable(
                    f"{label} is not in the model cache ({self.hf_cache}) and HF_HUB_OFFLINE "
                    "is set: download it first, or unset HF_HUB_OFFLINE",
                    field="model",
                )
            cause = e.__cause__ or e.__context__
            why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
            return Unavailable(
                f"cannot reach the Hugging Face Hub at {endpoint} to fetch {label}{why}, and "
                f"it is not in the model cache ({self.hf_cache})",
                field="model",
            )
        if isinstance(e, HFValidationError):
            return Invalid(f"{label} is not a valid Hugging Face reference: {e}", field="model")
        if isinstance(e, HfHubHTTPError):
            status = e.response.status_code if e.response is not None else "an error"
            return Unavailable(
                f"the Hugging Face Hub at {endpoint} answered {status} while fetching {label}",
                field="model",
            )
        return Unavailable(
            f"could not fetch {label} from {endpoint}: {type(e).__name__}: {e}", field="model"
        )


def _check_revision(ref: HfRef, revision: str) -> None:
    parts = revision.split("/")
    if revision.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Invalid(f"{revision!r} is not a valid revision of {ref.repo_id!r}", field="model")


def _expand(value: str) -> Path:
    return Path(os.path.expandvars(value)).expanduser()
