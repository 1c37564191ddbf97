"""Models from S3-compatible object stores: `s3://BUCKET/PREFIX` fetched into the node cache.

`S3Fetch.fetch` lists every object under the prefix, pins the listing (`listing_digest`: a
sha256 over the sorted (path, size, ETag) of every object), and downloads the objects into
a folder of the node cache named by that digest, so every replica on the node loads the
same files and a reference pinned to a digest (`s3://bucket/prefix@DIGEST`) is refused
when the prefix no longer holds what was pinned. A finished folder is recorded with the
sha256 of its files (`artifacts.hashing.sha256_tree`, beside it); a cached copy is hashed
again and compared before it is used, and fetched anew when it differs.

Several downloads of one listing (two endpoints with different keys, two server processes
on one node) share its folder: each checks, removes and moves a folder into place only
while it holds the digest's lock file (`DIGEST.lock` beside it), so none removes a folder
another has just committed, and a folder without its record (a commit that died half way)
is never taken for a finished one.

Configuration is the operator's, from the environment the fetch is given (the server's,
passed to the download child), never from a user's spec:

  PODIUM_S3_ENDPOINT_URL   the only S3 store requests go to (an S3-compatible server:
                           MinIO, Ceph, moto…); default AWS S3 in the region below
  PODIUM_S3_REGION         the region signed for (else AWS_REGION, AWS_DEFAULT_REGION,
                           us-east-1)

Credentials: the endpoint's own keys (`model_source.access_key_secret` /
`secret_key_secret`, handed in the child's environment as AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY) or else, only where the operator set PODIUM_S3_SERVER_CREDENTIALS,
the server's own environment keys. The child's environment is an allow-list
(`s3_download.child_env`): no profile, shared file, container, web-identity or SSO
credentials, no `credential_process`, no instance metadata (addresses no operator named).

Bounds: every request has connect and read timeouts and at most `MAX_ATTEMPTS` attempts
(botocore's standard retry mode); the listing stops past `max_files` objects or
`max_bytes` in all (like the archive limits); every object's path stays inside the
target folder; an object that changed between the listing and its download is refused.

Every failure becomes a `core.errors` class naming the reference (field="model"), with
the store's error code and never a credential. Blocking: run it in a download child
(`artifacts.s3_download`), where a stall can be killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from filelock import FileLock, Timeout

from podium.artifacts.hashing import sha256_tree
from podium.core import redact
from podium.core.errors import Invalid, NotFound, PodiumError, TooLarge, Unavailable
from podium.core.spec import S3Ref

ENDPOINT_VAR = "PODIUM_S3_ENDPOINT_URL"
REGION_VAR = "PODIUM_S3_REGION"
DEFAULT_REGION = "us-east-1"
MAX_ATTEMPTS = 3  # botocore's standard mode: the first try and two retries
CHUNK_BYTES = 64 * 1024  # read and written at a time: progress shows between chunks
HEARTBEAT_S = 2.0  # a line to the parent this often while hashing (not a stall)
TREE_SUFFIX = ".tree"  # beside a finished folder: the sha256 of its files
LOCK_SUFFIX = ".lock"  # beside it too: held while a download checks or commits the folder
LOCK_WAIT_S = 900.0  # another download of the listing hashing a large folder, at most
NAME_MAX = 255  # bytes of one path component on Linux, macOS and Windows file systems
_CREDENTIALS_REFUSED = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "403",
        "401",
    }
)
_MISSING = frozenset({"NoSuchBucket", "NoSuchKey", "404"})


@dataclass(frozen=True, slots=True)
class S3Config:
    """Where S3 requests go: operator configuration, checked before anything is sent."""

    endpoint_url: str
    region: str
    custom: bool  # an S3-compatible store (path-style addressing), not AWS itself

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Config:
        region = (
            env.get(REGION_VAR)
            or env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION")
            or DEFAULT_REGION
        ).strip()
        if not region.replace("-", "").isalnum() or len(region) > 64:
            raise Invalid(f"{REGION_VAR} {region!r} is not a region name", field=REGION_VAR)
        configured = (env.get(ENDPOINT_VAR) or "").strip().rstrip("/")
        value = configured or f"https://s3.{region}.amazonaws.com"
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username
            or parts.password
            or parts.query
            or parts.fragment
            or parts.path not in ("", "/")
        ):
            raise Invalid(
                f"{ENDPOINT_VAR} must be an http(s) URL of a host without path, credentials "
                f"or query, not {redact.url(value)!r} (credentials and query not shown)",
                field=ENDPOINT_VAR,
            )
        return cls(endpoint_url=value, region=region, custom=bool(configured))

    @property
    def shown(self) -> str:
        return redact.url(self.endpoint_url)


@dataclass(frozen=True, slots=True)
class S3Object:
    key: str
    path: str  # relative to the prefix: where the file goes in the model's folder
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    max_files: int


@dataclass(frozen=True, slots=True)
class Fetched:
    path: Path  # the model's folder in the node cache
    digest: str  # the listing digest
    bytes_fetched: int  # 0 when a verified cached copy was used
    cached: bool


def listing_digest(objects: list[S3Object]) -> str:
    """sha256 over the sorted (path, size, ETag) of every object: what was fetched, so a
    node that fetches later gets the same files or knows it did not."""
    h = hashlib.sha256()
    for o in sorted(objects, key=lambda o: o.path):
        h.update(json.dumps([o.path, o.size, o.etag], separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def relative_path(key: str, prefix: str) -> str | None:
    """The file path of `key` under `prefix` (None for a folder marker, a key ending in
    "/"); `Invalid` for one that is not under the prefix (a misbehaving store), that would
    leave the folder or is not a plain relative path."""
    if prefix and not key.startswith(f"{prefix}/"):
        raise Invalid(
            f"the store listed object key {key!r}, which is not under the prefix {prefix!r}",
            field="model",
        )
    rel = key[len(prefix) + 1 :] if prefix else key
    if not rel or rel.endswith("/"):
        return None
    parts = rel.split("/")
    if (
        rel.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in rel
        or any(ord(c) < 32 for c in rel)
        or len(rel.encode()) > 1024
    ):
        raise Invalid(f"object key {key!r} is not a safe file path under the prefix", field="model")
    return str(PurePosixPath(*parts))


class S3Fetch:
    """One `s3://` reference fetched into `root` (the node cache's `s3/` folder)."""

    def __init__(
        self,
        config: S3Config,
        ref: S3Ref,
        *,
        root: Path,
        limits: Limits,
        connect_timeout_s: float,
        read_timeout_s: float,
        credentials: tuple[str, str] | None = None,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self._heartbeat = heartbeat  # called every HEARTBEAT_S while hashing (no new bytes)
        self.ref = ref
        self.root = root
        self.limits = limits
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._credentials = credentials
        self.label = ref.location

    # ------------------------------------------------------------------ client

    def client(self) -> Any:
        """A boto3 S3 client for the configured store only, every call bounded."""
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # an optional dependency: say which
            raise Unavailable(
                f"fetching {self.label} needs boto3 on this node: pip install 'podium[s3]'",
                field="model",
            ) from None

        connect, read = self._timeouts
        config = Config(
            connect_timeout=connect,
            read_timeout=read,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            region_name=self.config.region,
            s3={"addressing_style": "path" if self.config.custom else "virtual"},
            signature_version="s3v4",
        )
        keys: dict[str, str] = {}
        if self._credentials is not None:
            keys = {
                "aws_access_key_id": self._credentials[0],
                "aws_secret_access_key": self._credentials[1],
            }
        session = boto3.session.Session()
        return session.client("s3", endpoint_url=self.config.endpoint_url, config=config, **keys)

    # ------------------------------------------------------------------ listing

    def list(self, client: Any) -> list[S3Object]:
        """Every object under the prefix, bounded by the limits; `NotFound` when none."""
        prefix = self.ref.prefix
        objects: list[S3Object] = []
        total = 0
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.ref.bucket, Prefix=f"{prefix}/" if prefix else ""
        )
        for page in pages:
            for item in page.get("Contents", ()):
                path = relative_path(str(item["Key"]), prefix)
                if path is None:
                    continue
                size = int(item.get("Size", 0))
                objects.append(S3Object(str(item["Key"]), path, size, _etag(item.get("ETag"))))
                total += size
                if len(objects) > self.limits.max_files:
                    raise TooLarge(
                        f"{self.label} holds more than {self.limits.max_files} objects "
                        "(PODIUM_DOWNLOAD_MAX_FILES)",
                        field="model",
                    )
                if total > self.limits.max_bytes:
                    raise TooLarge(
                        f"{self.label} holds more than {self.limits.max_bytes} bytes "
                        "(PODIUM_DOWNLOAD_MAX_BYTES)",
                        field="model",
                    )
        if not objects:
            raise NotFound(
                f"no objects under {self.label} on the S3 store at {self.config.shown}",
                field="model",
            )
        _check_no_clash(objects, self.label)
        return objects

    # ------------------------------------------------------------------ fetch

    def fetch(self, staging: Path, on_total: Callable[[int], None] = lambda _n: None) -> Fetched:
        """List, pin, and download into `staging` (a folder of this download, on the same
        file system as `root`), then move it into place; or use a verified cached copy."""
        try:
            client = self.client()
            objects = self.list(client)
            digest = listing_digest(objects)
            if self.ref.digest is not None and digest != self.ref.digest:
                raise NotFound(
                    f"{self.label} no longer holds the objects {self.ref} pinned (their "
                    f"listing digest is now {digest})",
                    field="model",
                )
            final = self.root / self.ref.bucket / digest
            with self._locked(final):
                if self._verified(final):
                    return Fetched(final, digest, 0, cached=True)
            on_total(sum(o.size for o in objects))
            fetched = 0
            for o in objects:
                fetched += self._download(client, o, staging)
            return Fetched(self._commit(staging, final), digest, fetched, cached=False)
        except PodiumError:
            raise
        except Exception as e:  # one seam: whatever botocore raises becomes ours
            raise self._translate(e) from None

    def _download(self, client: Any, o: S3Object, staging: Path) -> int:
        dest = staging / o.path
        base = staging.resolve()
        if not dest.resolve().is_relative_to(base) or dest.resolve() == base:
            raise Invalid(f"object key {o.key!r} leaves the model's folder", field="model")
        dest.parent.mkdir(parents=True, exist_ok=True)
        answer = client.get_object(Bucket=self.ref.bucket, Key=o.key)
        if _etag(answer.get("ETag")) != o.etag:
            raise Unavailable(
                f"object {o.key!r} of {self.label} changed while it was fetched: fetch again",
                field="model",
            )
        body = answer["Body"]
        written = 0
        try:
            with open(dest, "xb") as f:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    written += len(chunk)
                    if written > o.size:
                        break
                    f.write(chunk)
        finally:
            body.close()
        if written != o.size:
            raise Unavailable(
                f"object {o.key!r} of {self.label}: {written} bytes came, the listing said "
                f"{o.size}",
                field="model",
            )
        return written

    @contextlib.contextmanager
    def _locked(self, final: Path) -> Iterator[None]:
        """Hold the lock of `final` (its digest), across processes: checking, removing and
        committing the folder happen under it only. Beats while it waits and while it holds
        the lock (hashing writes nothing the parent's stall watch would see)."""
        final.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(final.with_name(final.name + LOCK_SUFFIX), timeout=LOCK_WAIT_S)
        with _beating(self._heartbeat):
            try:
                lock.acquire()
            except Timeout:
                raise Unavailable(
                    f"another download of {self.label} held {lock.lock_file} for "
                    f"{LOCK_WAIT_S:g} s: fetch again",
                    field="model",
                ) from None
            try:
                yield
            finally:
                lock.release()

    @staticmethod
    def _verified(final: Path) -> bool:
        """Whether a finished copy is there and still holds the files it was recorded with;
        a copy that differs, or a folder without its record (a commit that died between
        the rename and the record), is removed (fetched anew). Only under `_locked`."""
        tree = final.with_name(final.name + TREE_SUFFIX)
        if not final.exists() and not tree.exists():
            return False
        try:
            recorded = tree.read_text().strip()
            if final.is_dir() and sha256_tree(final).sha256 == recorded:
                return True
        except (OSError, PodiumError):
            pass
        shutil.rmtree(final, ignore_errors=True)
        with contextlib.suppress(OSError):
            tree.unlink()
        return False

    def _commit(self, staging: Path, final: Path) -> Path:
        """Record the files' sha256 and move the folder into place, under the digest's
        lock; another download that got there first with a verified copy wins (and this
        one's staging folder is left for the caller to remove)."""
        with _beating(self._heartbeat):
            digest = sha256_tree(staging).sha256
        tree = final.with_name(final.name + TREE_SUFFIX)
        with self._locked(final):
            if self._verified(final):  # another download of the same listing finished first
                return final
            os.replace(staging, final)  # `_verified` removed what was there, if anything
            partial = tree.with_name(tree.name + ".partial")
            partial.write_text(digest + "\n")
            os.replace(partial, tree)
        return final

    def _translate(self, e: Exception) -> PodiumError:
        where = f"the S3 store at {self.config.shown}"
        code = _error_code(e)
        name = type(e).__name__
        if name == "NoCredentialsError":
            return Unavailable(
                f"no S3 credentials to fetch {self.label}: name access_key_secret and "
                "secret_key_secret in the endpoint's model_source (or, with "
                "PODIUM_S3_SERVER_CREDENTIALS=1, give the server AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY)",
                field="model",
            )
        if code in _CREDENTIALS_REFUSED:
            return Unavailable(
                f"{where} refused the credentials for {self.label} ({code}): check the "
                "endpoint's S3 keys (model_source) or the server's own",
                field="model",
            )
        if code == "NoSuchBucket":
            return NotFound(f"bucket {self.ref.bucket!r} not found on {where}", field="model")
        if code in _MISSING:
            return NotFound(f"{self.label} not found on {where} ({code})", field="model")
        if code is not None:
            return Unavailable(f"{where} answered {code} for {self.label}", field="model")
        if isinstance(e, OSError) and not _is_botocore(e):
            return Unavailable(f"could not write {self.label} into the cache: {e}", field="model")
        return Unavailable(
            f"cannot reach {where} to fetch {self.label} ({name}: {redact.urls_in(str(e))})",
            field="model",
        )


@contextlib.contextmanager
def _beating(heartbeat: Callable[[], None]) -> Iterator[None]:
    """Call `heartbeat` every `HEARTBEAT_S` while the block runs (hashing a large folder
    writes nothing the parent's stall watch would see)."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            heartbeat()

    thread = threading.Thread(target=beat, name="podium-s3-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _etag(value: object) -> str:
    return str(value or "").strip('"')


def _error_code(e: Exception) -> str | None:
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None if status is None else str(status)


def _is_botocore(e: Exception) -> bool:
    return type(e).__module__.startswith(("botocore", "urllib3", "boto3"))


def _check_no_clash(objects: list[S3Object], label: str) -> None:
    """Every object can be written, on any node's file system: no path is both a file and a
    folder (`a` and `a/b`), no path component is longer than `NAME_MAX` bytes, and no two
    paths (files or folders) differ only in case or Unicode normalisation (`A` / `a`: one
    would overwrite the other on a case-insensitive file system)."""
    files = {o.path for o in objects}
    seen: dict[str, str] = {}  # folded path: the path as listed
    for path in sorted(files):
        for part in path.split("/"):
            if len(part.encode()) > NAME_MAX:
                raise Invalid(
                    f"{label}: object {path!r} has a path component longer than {NAME_MAX} "
                    "bytes (no file system can store it)",
                    field="model",
                )
        for name in (*_parents(path), path):
            if name in files and name != path:
                raise Invalid(
                    f"{label}: object {name!r} is also a folder of {path!r}", field="model"
                )
            folded = unicodedata.normalize("NFC", name).casefold()
            other = seen.setdefault(folded, name)
            if other != name:
                raise Invalid(
                    f"{label}: objects {other!r} and {name!r} differ only in case or Unicode "
                    "form (one would overwrite the other on a case-insensitive file system)",
                    field="model",
                )


def _parents(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])
