"""Model downloads in a child process: bounded, watched for progress, cancellable.

`ChildDownload` is what every source shares (the child, its stall watch, its result, its
kill); `HubDownload` fetches `hf://` models, `s3_download.S3Download` `s3://` ones. What
follows describes the Hub's; the S3 child has the same bounds (`artifacts/s3.py`).

`HubDownload.start()` runs `python -m podium.artifacts.download` (`NodeCache.resolve_hf` in
a process of its own, in its own session) and returns at once; `check()` says whether it is
still running, what it resolved to, or raises why it failed; `cancel()` kills it. Progress:
`bytes_done` (measured on disk) and `bytes_total`, the size of the repo's files as the Hub's
metadata gives it (the child asks for it first and prints it on a line of its own; None
when the Hub does not say, e.g. a file without a size, or the request failed: the download
goes on without it).

Why a process and not a thread: a thread blocked in a socket read cannot be stopped, and
huggingface_hub downloads files in a thread pool that the interpreter joins at exit, so a
hung Hub would hold up a delete, a revision change and the server's own exit. A process is
killed at once.

Bounds, all configurable (`core.settings.DownloadSettings`):
- every HTTP request the child makes has connect and read timeouts, whatever timeout
  huggingface_hub passes (it passes none for `repo_info`): `_CappedTransport`;
- a download whose cache folder (`models--ORG--NAME`, partial `.incomplete` files included)
  and its own hf_xet chunk cache (`HF_XET_CACHE`, one folder per download under the node
  cache, so another download's data is not taken for this one's progress) have not grown
  for `stall_s` seconds is killed and fails with the reason. Both are measured at most
  every `MEASURE_EVERY_S` per download, whatever the controller's pass rate;
- the child dies with the process that started it (Linux: `PR_SET_PDEATHSIG`), so a server
  killed with SIGKILL leaves no download running. The signal follows the *thread* that
  started the child: start downloads from a long-lived thread (the controller's loop: the
  local backend's `prepare` runs on it, never in a worker thread);
- URLs reach events and errors without credentials or query strings (`core.redact`);
- a token given for one download (`token`: an endpoint's secret) reaches the child in its
  environment (`HF_TOKEN`), never in its argv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from podium.artifacts.sources import DEFAULT_REVISION, NodeCache, ResolvedSource
from podium.core import errors, redact
from podium.core.errors import PodiumError, Unavailable
from podium.core.spec import HfRef

# What a download child may inherit of the server's environment, by name; nothing else
# reaches it (no PODIUM_* setting such as the database URL, no cloud keys, no tokens).
INHERITED_VARS = frozenset(
    {
        *("PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE"),
        *("PYTHONPATH", "LD_LIBRARY_PATH", "SYSTEMROOT"),  # the interpreter finds podium, libs
        *("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"),
        *("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"),
    }
)
_STDERR_TAIL = 2000  # characters of a child's stderr quoted when it dies without a result
_STDOUT_MAX = 1024 * 1024  # a child prints two short lines; more is not read
MEASURE_EVERY_S = 1.0  # the cache folders are walked at most this often per download
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ChildDownload:
    """A model being fetched into the node cache by a child process (`python -m …`): the
    machinery every source shares (spawn, stall watch, result, kill). A source says what
    to run (`_command`), which folders grow while data arrives (`_watched`) and what a
    result line means (`_resolved`)."""

    label: str

    def __init__(
        self,
        cache: NodeCache,
        *,
        stall_s: float,
        connect_timeout_s: float,
        read_timeout_s: float,
        python: str = sys.executable,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.stall_s = stall_s
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._python = python
        self._monotonic = monotonic
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._progress: tuple[int, int] = (-1, -1)
        self._progress_at = 0.0
        self._measured_at = 0.0
        self._out = bytearray()  # what the child printed so far: its total, then its result
        self._out_seen = 0  # of it, when the child was last seen making progress
        self._total: int | None = None

    # ------------------------------------------------------------------ what a source says

    @property
    def endpoint(self) -> str:
        """Where the files come from, as it may be shown (no credentials, no query)."""
        raise NotImplementedError

    def _command(self) -> tuple[list[str], dict[str, str]]:
        """The child's argv and environment (secrets in the environment, never argv)."""
        raise NotImplementedError

    def _watched(self) -> list[Path]:
        """The folders that grow while data arrives (progress and stall watch)."""
        raise NotImplementedError

    def _resolved(self, result: dict[str, Any]) -> ResolvedSource:
        return ResolvedSource(Path(result["path"]), result["ref"], result["revision"])

    def _cleanup(self) -> None:
        """What the download leaves behind once it ended (temporary folders)."""

    # ------------------------------------------------------------------ progress

    @property
    def bytes_done(self) -> int:
        """Bytes fetched so far, as last measured (at most every `MEASURE_EVERY_S`, by
        `check`)."""
        return max(0, self._progress[1])

    @property
    def bytes_total(self) -> int | None:
        """The size of the files, once the child has told it (None before, or when the
        source does not tell it)."""
        return self._total

    # ------------------------------------------------------------------ the child

    def start(self) -> None:
        argv, env = self._command()
        try:
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by check/cancel
            self._proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            self._close()
            raise Unavailable(
                f"could not start the download of {self.label}: {e}", field="model"
            ) from e
        assert self._proc.stdout is not None
        os.set_blocking(self._proc.stdout.fileno(), False)  # `check` reads what is there
        self._progress, self._progress_at = self._measure(), self._monotonic()
        self._measured_at = self._progress_at

    def check(self) -> ResolvedSource | None:
        """None while it runs; the resolved snapshot once done; raises why it failed."""
        proc = self._proc
        if proc is None:
            raise Unavailable(f"the download of {self.label} was not started", field="model")
        code = proc.poll()
        self._read_out()
        if code is None:
            now = self._monotonic()
            if now - self._measured_at < MEASURE_EVERY_S:
                return None  # walked the folders less than a second ago
            seen, self._measured_at = self._measure(), now
            if seen != self._progress or len(self._out) != self._out_seen:
                # data on disk, or a line from the child (a heartbeat while it hashes)
                self._progress, self._progress_at = seen, now
                self._out_seen = len(self._out)
            elif now - self._progress_at >= self.stall_s:
                self.cancel()
                raise Unavailable(
                    f"download of {self.label} stalled: no data for {self.stall_s:g} s "
                    f"from {self.endpoint}",
                    field="model",
                )
            return None
        self._progress = self._measure()  # what it fetched in all (`bytes_done`)
        result = _last_json(bytes(self._out))
        stderr = self._stderr_tail()
        self._close()
        if result is not None and "path" in result:
            return self._resolved(result)
        if result is not None and "error" in result:
            raise _error_class(str(result["error"]))(
                redact.urls_in(str(result["message"])), field=result.get("field")
            )
        raise Unavailable(
            f"the download of {self.label} exited with code {code}: {redact.urls_in(stderr)}",
            field="model",
        )

    def cancel(self) -> None:
        """Kill the download (its whole process group) now; a no-op once it has ended."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL is not ignored
                proc.wait(5)
        self._close()

    def _close(self) -> None:
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._cleanup()

    def _read_out(self) -> None:
        """Take what the child has printed since the last call (never waits for more)."""
        proc = self._proc
        if proc is None or proc.stdout is None or proc.stdout.closed:
            return
        while len(self._out) < _STDOUT_MAX:
            try:
                chunk = os.read(proc.stdout.fileno(), 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            self._out += chunk
        if self._total is None:
            self._total = _total_line(bytes(self._out))

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return text[-_STDERR_TAIL:].strip()

    def _measure(self) -> tuple[int, int]:
        """(files, bytes) under the watched folders: they grow while data arrives."""
        count = size = 0
        for folder in self._watched():
            for root, _dirs, files in os.walk(folder):  # a missing folder yields nothing
                for name in files:
                    try:
                        size += os.stat(os.path.join(root, name), follow_symlinks=False).st_size
                    except OSError:
                        continue
                    count += 1
        return count, size


class HubDownload(ChildDownload):
    """One `hf://` reference being fetched into the node cache by a child process."""

    def __init__(
        self,
        cache: NodeCache,
        ref: HfRef,
        *,
        stall_s: float,
        connect_timeout_s: float,
        read_timeout_s: float,
        token: str | None = None,
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
        self._token = token  # None: the cache's own HF_TOKEN, if any
        self.ref = ref
        self.label = f"hf://{ref.repo_id}" + (f"@{ref.revision}" if ref.revision else "")
        self._xet: Path | None = None

    @property
    def folder(self) -> Path:
        """The repo's folder in the huggingface_hub cache (blobs grow here while fetching)."""
        return self.cache.hf_cache / f"models--{self.ref.repo_id.replace('/', '--')}"

    @property
    def xet_cache(self) -> Path | None:
        """This download's own hf_xet chunk cache (hf_xet may fill it before the blob grows);
        None before `start` and after the end."""
        return self._xet

    @property
    def endpoint(self) -> str:
        """The Hub's URL as it may be shown (no credentials, no query)."""
        return redact.url(self.cache.hf_endpoint)

    def _watched(self) -> list[Path]:
        """The repo's cache folder and hf_xet's chunk cache."""
        return [self.folder] if self._xet is None else [self.folder, self._xet]

    def _command(self) -> tuple[list[str], dict[str, str]]:
        endpoint = self.cache.hf_endpoint  # Invalid for a malformed HF_ENDPOINT: before forking
        connect, read = self._timeouts
        # The allow-list of the process's own environment (PATH, PYTHONPATH, proxies…; no
        # Hub setting: the cache's configuration decides those, as it does in this process).
        env = {k: v for k, v in os.environ.items() if k in INHERITED_VARS}
        env.update(self.cache.env)
        downloads = self.cache.cache_dir / "downloads"
        try:
            downloads.mkdir(parents=True, exist_ok=True)
            self._xet = Path(tempfile.mkdtemp(prefix="xet-", dir=downloads))
        except OSError as e:
            raise Unavailable(
                f"could not start the download of {self.label}: {e}", field="model"
            ) from e
        env.update(
            HF_XET_CACHE=str(self._xet),
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_HUB_ETAG_TIMEOUT=f"{read:g}",
            HF_HUB_DOWNLOAD_TIMEOUT=f"{read:g}",
            HF_ENDPOINT=endpoint,
        )
        if self._token:  # in the environment, never argv (`ps` shows argv to everyone)
            env["HF_TOKEN"] = self._token
        argv = [
            *(self._python, "-m", "podium.artifacts.download", self.ref.repo_id),
            *("--revision", self.ref.revision or ""),
            *("--cache-dir", str(self.cache.cache_dir)),
            *("--connect-timeout", f"{connect:g}", "--read-timeout", f"{read:g}"),
            *("--parent-pid", str(os.getpid())),
        ]
        return argv, env

    def _cleanup(self) -> None:
        if self._xet is not None:  # chunks already in the blobs; nothing else reads them
            shutil.rmtree(self._xet, ignore_errors=True)
            self._xet = None


def _error_class(name: str) -> type[PodiumError]:
    cls = getattr(errors, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, PodiumError) else PodiumError


def _total_line(data: bytes) -> int | None:
    """The total the child announced (`{"total": N}`), if it has."""
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.startswith('{"total"'):
            with contextlib.suppress(ValueError):
                value = json.loads(line).get("total")
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    return value
    return None


def _last_json(data: bytes) -> dict[str, Any] | None:
    for line in reversed(data.decode("utf-8", errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


# ---------------------------------------------------------------------- the child process


def die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this process when the process that started it dies (a server killed
    with SIGKILL must not leave its downloads running). Elsewhere: nothing."""
    if not sys.platform.startswith("linux") or parent_pid <= 0:
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # it died before the prctl: nobody will signal us
        os._exit(1)


def _install_timeouts(connect_s: float, read_s: float) -> None:
    """Every request huggingface_hub makes from here on gets at most these timeouts.

    The transport cap needs huggingface_hub's client factory (`set_client_factory`, httpx2)
    and its private request hook; without them (another huggingface_hub) the child keeps
    the documented HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT that `start` sets."""
    try:
        import httpx2
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils import _http

        hook = _http.hf_request_event_hook
    except (ImportError, AttributeError):
        return

    caps = {"connect": connect_s, "read": read_s, "write": read_s, "pool": connect_s}

    class _CappedTransport(httpx2.HTTPTransport):
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            asked = request.extensions.get("timeout") or {}
            request.extensions["timeout"] = {
                key: cap if asked.get(key) is None else min(float(asked[key]), cap)
                for key, cap in caps.items()
            }
            return super().handle_request(request)

    def factory() -> httpx2.Client:
        return httpx2.Client(
            transport=_CappedTransport(),
            event_hooks={"request": [hook]},
            follow_redirects=True,
            timeout=httpx2.Timeout(read_s, connect=connect_s),
        )

    set_client_factory(factory)


def _total_size(cache: NodeCache, ref: HfRef) -> int | None:
    """The size of the repo's files at `ref`, from the Hub's metadata (`model_info` with
    `files_metadata`: one request); None when a file has no size or the Hub does not answer
    (the download itself then reports the error, if there is one)."""
    try:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=cache.hf_endpoint, token=cache.env.get("HF_TOKEN") or False)
        revision = ref.revision or DEFAULT_REVISION
        info = api.model_info(ref.repo_id, revision=revision, files_metadata=True)
    except Exception:  # any failure: no total, the download goes on
        return None
    sizes = [s.size for s in info.siblings or ()]
    if not sizes or any(not isinstance(n, int) for n in sizes):
        return None
    return sum(n for n in sizes if isinstance(n, int))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podium.artifacts.download")
    parser.add_argument("repo_id")
    parser.add_argument("--revision", default="")
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--read-timeout", type=float, default=30.0)
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    _install_timeouts(args.connect_timeout, args.read_timeout)
    cache = NodeCache(args.cache_dir)
    ref = HfRef(args.repo_id, args.revision or None)
    if not cache.hf_offline and (total := _total_size(cache, ref)) is not None:
        print(json.dumps({"total": total}), flush=True)  # first: the parent shows progress
    result: dict[str, Any]
    try:
        got = cache.resolve_hf(ref)
        result = {"path": str(got.path), "ref": got.ref, "revision": got.revision}
    except PodiumError as e:
        result = {"error": type(e).__name__, "message": e.message, "field": e.field}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
