"""`s3://` downloads in a child process: `python -m podium.artifacts.s3_download`.

`S3Download` is the parent's side (`download.ChildDownload`: spawned in its own session,
watched for progress, killed after `stall_s` without new data, dying with the server);
`main` is the child's, running `artifacts.s3.S3Fetch`. The child writes into a staging
folder of its own under the node cache's `downloads/` (what the parent measures: bytes
done), prints `{"total": N}` once it has listed the prefix (`{"hashing": true}` every few
seconds while it hashes a folder: a sign of life for the stall watch), then one result line: the
folder, the pinned reference (`s3://bucket/prefix@DIGEST`) and the bytes fetched, or the
error. A remote node (the Ray backend) runs the same child against its own cache.

The child's environment is built from an allow-list (`child_env`), not from the server's:
what Python and TLS need (PATH, locale, proxies, CA bundles), the S3 store's address and
region as the parent resolved them (`artifacts.s3.S3Config`, the server's configuration
only), and the credentials of this download: the endpoint's keys (its secrets, as
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: in the environment, never argv), or, only where
the operator opted in (`PODIUM_S3_SERVER_CREDENTIALS`), the server's own environment keys.
No other `AWS_*` variable reaches it, the shared config and credentials files are
`/dev/null` and the instance metadata service is off, so botocore's credential chain can
neither send a request to an address no operator named (container, web-identity/STS, SSO,
IMDS) nor run a command (`credential_process`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from podium.artifacts.download import INHERITED_VARS, ChildDownload, die_with_parent
from podium.artifacts.s3 import ENDPOINT_VAR, REGION_VAR, S3Config, S3Fetch
from podium.artifacts.s3 import Limits as S3Limits
from podium.artifacts.sources import NodeCache, ResolvedSource
from podium.core.errors import Invalid, PodiumError, Unavailable
from podium.core.settings import S3_SERVER_CREDENTIALS_VAR
from podium.core.spec import S3Ref, parse_model_ref

# The server's own keys, passed on only where the operator opted in: environment keys, the
# one kind of credential that needs no request and no command to obtain.
SERVER_KEY_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# What the child may inherit of the server's environment, by name (the download children's
# common allow-list, and S3's own CA bundle); nothing else reaches it.
CHILD_VARS = INHERITED_VARS | {"AWS_CA_BUNDLE"}
# Set in every child: botocore reads no profile, runs no credential_process, asks no
# instance metadata address.
CHILD_FIXED = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def child_env(
    source: Mapping[str, str],
    config: S3Config,
    keys: tuple[str, str] | None,
    *,
    server_credentials: bool,
) -> dict[str, str]:
    """The download child's whole environment: `CHILD_VARS` of `source` (the server's
    environment as the node cache was configured with), the store's address and region as
    `config` resolved them, `CHILD_FIXED`, and the credentials: `keys`, or else the
    server's `SERVER_KEY_VARS` when `server_credentials` (the operator's opt-in)."""
    env = {k: v for k, v in source.items() if k in CHILD_VARS}
    if config.custom:
        env[ENDPOINT_VAR] = config.endpoint_url
    env[REGION_VAR] = config.region
    env.update(CHILD_FIXED)
    if keys is not None:
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = keys
    elif server_credentials:
        env.update({k: source[k] for k in SERVER_KEY_VARS if source.get(k)})
    return env


class S3Download(ChildDownload):
    """One `s3://` reference being fetched into the node cache by a child process."""

    def __init__(
        self,
        cache: NodeCache,
        ref: S3Ref,
        *,
        stall_s: float,
        connect_timeout_s: float,
        read_timeout_s: float,
        limits: S3Limits,
        keys: tuple[str, str] | None = None,
        server_credentials: bool = False,
        python: str = sys.executable,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            cache,
            stall_s=stall_s,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            python=python,
            monotonic=monotonic,
        )
        self.ref = ref
        self.label = str(ref)
        self.limits = limits
        self._keys = keys  # None: the server's own AWS credentials, if allowed
        self._server_credentials = server_credentials  # PODIUM_S3_SERVER_CREDENTIALS
        self._staging: Path | None = None
        self._fetched: int | None = None

    @property
    def config(self) -> S3Config:
        return S3Config.from_env(self.cache.env)

    @property
    def endpoint(self) -> str:
        return self.config.shown

    @property
    def bytes_done(self) -> int:
        if self._fetched is not None:  # the child said (its staging folder is gone)
            return self._fetched
        return super().bytes_done

    def _watched(self) -> list[Path]:
        return [] if self._staging is None else [self._staging]

    def _command(self) -> tuple[list[str], dict[str, str]]:
        config = self.config  # Invalid for a malformed PODIUM_S3_ENDPOINT_URL: before forking
        if self._keys is None and not self._server_credentials:
            # Also refused at deploy (api.services.checks); a revision stored before the
            # server's credentials became opt-in ends here, with the same reason.
            raise Invalid(
                f"{self.label} names no S3 keys: give model_source.access_key_secret and "
                f"secret_key_secret (the server's own AWS credentials are not used: "
                f"{S3_SERVER_CREDENTIALS_VAR} is off)",
                field="model_source.access_key_secret",
            )
        connect, read = self._timeouts
        # keys in the environment, never argv (`ps` shows argv)
        env = child_env(
            self.cache.env, config, self._keys, server_credentials=self._server_credentials
        )
        downloads = self.cache.cache_dir / "downloads"
        try:
            downloads.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix="s3-", dir=downloads))
        except OSError as e:
            raise Unavailable(
                f"could not start the download of {self.label}: {e}", field="model"
            ) from e
        argv = [
            *(self._python, "-m", "podium.artifacts.s3_download", str(self.ref)),
            *("--cache-dir", str(self.cache.cache_dir), "--staging", str(self._staging)),
            *("--connect-timeout", f"{connect:g}", "--read-timeout", f"{read:g}"),
            *("--max-bytes", str(self.limits.max_bytes)),
            *("--max-files", str(self.limits.max_files)),
            *("--parent-pid", str(os.getpid())),
        ]
        return argv, env

    def _resolved(self, result: dict[str, Any]) -> ResolvedSource:
        fetched = result.get("bytes")
        if isinstance(fetched, int) and not isinstance(fetched, bool):
            self._fetched = fetched
        return super()._resolved(result)

    def _cleanup(self) -> None:
        if self._staging is not None:  # moved into place, or half a download
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None


def s3_root(cache_dir: Path) -> Path:
    """Where fetched `s3://` models live in the node cache: `s3/BUCKET/DIGEST/`."""
    return cache_dir / "s3"


# ---------------------------------------------------------------------- the child process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podium.artifacts.s3_download")
    parser.add_argument("ref")
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--staging", type=Path, required=True)
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--read-timeout", type=float, default=30.0)
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--max-files", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    result: dict[str, Any]
    try:
        ref = parse_model_ref(args.ref)
        if not isinstance(ref, S3Ref):
            raise Unavailable(f"{args.ref!r} is not an s3:// reference", field="model")
        fetch = S3Fetch(
            S3Config.from_env(os.environ),
            ref,
            root=s3_root(args.cache_dir),
            limits=S3Limits(max_bytes=args.max_bytes, max_files=args.max_files),
            connect_timeout_s=args.connect_timeout,
            read_timeout_s=args.read_timeout,
            heartbeat=lambda: print('{"hashing": true}', flush=True),
        )
        got = fetch.fetch(args.staging, lambda n: print(json.dumps({"total": n}), flush=True))
        pinned = S3Ref(ref.bucket, ref.prefix, got.digest)
        result = {
            "path": str(got.path),
            "ref": str(pinned),
            "revision": got.digest,
            "bytes": got.bytes_fetched,
            "cached": got.cached,
        }
    except PodiumError as e:
        result = {"error": type(e).__name__, "message": e.message, "field": e.field}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
