"""Fetch a repository model into a node's cache, verified by digest (runs on a Ray node).

A replica's actor calls `fetch_repository_model` on the node that Ray chose: the files come
from the API's artifact endpoint (`GET /api/v1/models/{name}/versions/{version}/files`, a
tar) with a read-only token, are unpacked by the bounded unpacker into a temporary folder,
hashed, and moved into `<cache>/models/<sha256>` only when the hash is the one the store
recorded. A folder already there under that name is what was verified before: used as is.
Two replicas of one model on one node fetch it once (a lock file per digest).

Every request has a timeout; the token is sent only in the `Authorization` header and never
appears in an error or a log line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from podium.artifacts.hashing import sha256_tree
from podium.artifacts.unpack import safe_extract
from podium.core.access import split_key
from podium.core.errors import LoadError, PodiumError
from podium.core.spec import RepoRef, parse_model_ref

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0  # between two chunks of the body, not for the whole body
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FetchAccess:
    """Where the API answers for nodes, and the token that may read models (None: the
    server runs without auth). The token is never shown (`repr`)."""

    api_url: str
    token: str | None = field(default=None, repr=False)


def files_url(api_url: str, ref: str) -> str:
    """The artifact endpoint of a repository model reference (`iris:3`, `team.iris:3`)."""
    parsed = parse_model_ref(ref)
    if not isinstance(parsed, RepoRef) or parsed.version is None:
        raise LoadError(f"{ref!r} is not a repository model version", field="model")
    project, name = split_key(parsed.name)
    base = api_url.rstrip("/")
    return f"{base}/api/v1/models/{name}/versions/{parsed.version}/files?project={project}"


def fetch_repository_model(ref: str, digest: str, access: FetchAccess, cache: Path) -> Path:
    """The folder of `ref` in this node's `cache`, fetched first if absent; `LoadError` when
    it cannot be fetched or is not what `digest` says."""
    target = cache / "models" / digest
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{digest}.lock"):
        if target.is_dir():  # fetched by another replica while we waited
            return target
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
            archive = Path(tmp) / "model.tar"
            _download(files_url(access.api_url, ref), access.token, archive)
            unpacked = Path(tmp) / "files"
            try:
                safe_extract(archive, unpacked, name="model.tar")
            except PodiumError as e:
                raise LoadError(f"model {ref}: {e.message}", field="model") from e
            archive.unlink()
            got = sha256_tree(unpacked).sha256
            if got != digest:
                raise LoadError(
                    f"model {ref}: the fetched files have sha256 {got}, the repository "
                    f"recorded {digest}",
                    field="model",
                )
            os.rename(unpacked, target)
    return target


def _download(url: str, token: str | None, dest: Path) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    shown = url.split("?", 1)[0]
    try:
        with (
            httpx.stream("GET", url, headers=headers, timeout=timeout) as r,
            dest.open("wb") as out,
        ):
            if r.status_code != 200:
                r.read()
                raise LoadError(
                    f"fetching {shown} answered {r.status_code}: {r.text[:200]}", field="model"
                )
            for chunk in r.iter_bytes(CHUNK_BYTES):
                out.write(chunk)
    except httpx.HTTPError as e:
        raise LoadError(f"fetching {shown} failed: {type(e).__name__}: {e}", field="model") from e


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
