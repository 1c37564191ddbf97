"""Zygotes for the local backend: replicas forked from a warm process (the zygote's side is
`podium.replica.zygote`; the design is in docs/coldstart.md).

`ZygotePool.fork(...)` returns the forked replica's pid, or None (reason logged) when the
replica must be spawned: start mode `spawn`, a runtime without a zygote, an endpoint env
read at import time, a replica given GPUs (CUDA must start in a fresh process; the zygote
itself sees no GPU), the zygote still importing (started in the background, so the next
replica forks), or any zygote failure. A zygote is the server's child, in its own session,
on a socketpair; it exits with the server, its forks do not: the next server adopts them
through `<replica>.fork.json` (their command line is the zygote's). Also here: the
durations of a start's phases (`startup_report`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from podium.backends import logfiles, processes
from podium.backends.base import ReplicaStartup
from podium.backends.replica_env import ENV_VISIBLE_DEVICES, inherited_env
from podium.replica import zygote as wire

log = logging.getLogger("podium.backends.zygote_pool")

ENV_START_MODE = "PODIUM_START_MODE"
START_MODES = ("fork", "spawn")
REQUEST_TIMEOUT_S = 10.0
RETRY_AFTER_S = (5.0, 300.0)  # a zygote that failed is retried after 5 s, doubling to 5 min
FORK_RECORD_SUFFIX = ".fork.json"

# Environment variables read while modules are imported (or by the interpreter at start):
# an endpoint that sets one gets a spawned replica, because a zygote imported its modules
# with the server's environment. The thread variables the backend sets itself are applied
# after the fork (threadpoolctl, torch.set_num_threads) and are not in this list.
_IMPORT_TIME_PREFIXES = (
    *("PYTHON", "LD_", "MALLOC_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TOKENIZERS_"),
    *("SENTENCE_TRANSFORMERS_", "TORCH", "PYTORCH_", "CUDA_", "NVIDIA_", "KMP_", "GOMP_"),
    *("OMP_", "MKL_", "OPENBLAS_", "SKLEARN_", "SCIPY_", "NUMPY_"),
)


def default_start_mode(env: Mapping[str, str] | None = None) -> str:
    """`PODIUM_START_MODE` (fork|spawn); fork where the OS has fork, else spawn."""
    env = os.environ if env is None else env
    mode = env.get(ENV_START_MODE, "").strip().lower()
    if mode in START_MODES:
        return mode
    if mode:
        log.warning("%s=%r is not fork or spawn; using the default", ENV_START_MODE, mode)
    return "fork" if sys.platform.startswith("linux") else "spawn"


def family_of(runtime: str) -> str | None:
    """The zygote family that serves this framework (None: always spawned)."""
    return runtime if runtime in wire.FAMILIES else None


def import_time_vars(env: Mapping[str, str]) -> list[str]:
    """Variables of an endpoint's env that would differ from what a zygote imported with."""
    return sorted(k for k in env if k.upper().startswith(_IMPORT_TIME_PREFIXES))


class ZygoteError(RuntimeError):
    """The zygote did not answer as expected (it is replaced)."""


class Zygote:
    """One zygote process and our end of its socket. Not thread-safe: the pool locks."""

    def __init__(self, family: str, python: str, log_path: Path) -> None:
        self.family = family
        self.log_path = log_path
        self.info: dict[str, Any] | None = None  # the zygote's ready message
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # A forked replica's /proc/self/environ is the zygote's: keep the server's secrets
        # out of it too (see replica_env).
        env = inherited_env()
        env.update(dict.fromkeys(wire.THREAD_ENV, "1"))
        env["PYTHONUNBUFFERED"] = "1"
        # No GPU for the zygote: a library that initialised CUDA while importing would
        # leave every forked child unable to use it. GPU replicas are spawned (`fork`).
        env[ENV_VISIBLE_DEVICES] = ""
        fd = str(theirs.fileno())
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as out:
                self.popen = subprocess.Popen(
                    [python, "-m", "podium.replica.zygote", "--family", family, "--fd", fd],
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    close_fds=True,
                )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_ready(self, timeout: float = 0.0) -> bool:
        """True once the zygote has imported its modules; reads its ready message when it
        has arrived. Raises ZygoteError if it exited or cannot be used."""
        if self.info is not None:
            return True
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            if not self.alive():
                raise ZygoteError(f"exited during its imports ({self._exit()})")
            return False
        message = self._recv(REQUEST_TIMEOUT_S)
        if message.get("event") != "ready":
            raise ZygoteError(f"unexpected first message {message!r}")
        threads = int(message.get("threads", 0))
        if threads > 1:
            raise ZygoteError(
                f"has {threads} threads after its imports; forking a threaded process is "
                "not safe (a lock held by another thread stays locked in the child)"
            )
        self.info = message
        failed = message.get("failed") or {}
        log.info(
            "zygote %s ready (pid %d, imports %.2fs%s)",
            self.family,
            self.pid,
            float(message.get("import_s", 0.0)),
            f"; not imported: {', '.join(sorted(failed))}" if failed else "",
        )
        return True

    def fork(self, argv: Sequence[str], env: Mapping[str, str], fds: Sequence[int]) -> int:
        reply = self._request({"op": "start", "argv": list(argv), "env": dict(env)}, fds)
        return int(reply["pid"])

    def exit_code(self, pid: int) -> tuple[bool, int | None]:
        """(exited, exit code) of a child, as the zygote reaped it."""
        reply = self._request({"op": "exit_code", "pid": pid})
        code = reply.get("code")
        return bool(reply.get("exited")), (int(code) if code is not None else None)

    def close(self, timeout: float = 5.0) -> None:
        """End the zygote (closing the socket is its signal to exit); its children live on."""
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self.popen.terminate()  # the zygote alone: each child leads its own session
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def _request(self, message: dict[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        try:
            self.sock.settimeout(REQUEST_TIMEOUT_S)
            wire.send_message(self.sock, message, fds)
            reply = self._recv(REQUEST_TIMEOUT_S)
        except (OSError, ValueError) as e:
            raise ZygoteError(f"{message.get('op')} failed: {e}") from e
        if not reply.get("ok"):
            raise ZygoteError(str(reply.get("error") or "refused"))
        return reply

    def _recv(self, timeout: float) -> dict[str, Any]:
        try:
            self.sock.settimeout(timeout)
            message, fds = wire.recv_message(self.sock)
        except (OSError, ValueError) as e:
            raise ZygoteError(f"no answer ({e}; {self._exit()})") from e
        for fd in fds:
            os.close(fd)
        return message

    def _exit(self) -> str:
        code = self.popen.poll()
        if code is None:
            return "still running"
        tail = " | ".join(logfiles.tail_lines(self.log_path, 3))
        return f"{processes.describe_exit(code)}; log: {tail}"


@dataclass(slots=True)
class _Family:
    zygote: Zygote | None = None
    retry_at: float = 0.0
    failures: int = 0
    reason: str | None = None  # why the last zygote was given up


class ZygotePool:
    """One zygote per runtime family, started on first need and replaced when it dies."""

    def __init__(self, run_dir: Path, *, python: str, mode: str) -> None:
        self.run_dir = run_dir
        self.python = python
        self.mode = mode
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.mode == "fork"

    def prewarm(self, runtime: str) -> None:
        """Start the family's zygote now if it has none (non-blocking)."""
        family = family_of(runtime)
        if not self.enabled or family is None:
            return
        with self._lock:
            self._usable(family)

    def needs_prewarm(self, runtime: str) -> bool:
        """False when `prewarm` would have nothing to do: no zygote for this runtime, or its
        family's zygote is already importing or ready and alive. Reads without the pool's
        lock (a fork holds it across a request): a stale answer costs one `prewarm` call
        more or one pass later, nothing else."""
        family = family_of(runtime)
        if not self.enabled or family is None or self._closed:
            return False
        state = self._families.get(family)
        z = state.zygote if state is not None else None
        return z is None or not z.alive()

    def wait_ready(self, runtime: str, timeout: float) -> bool:
        """Start the family's zygote if needed and wait until it is ready (tests, benches)."""
        family = family_of(runtime)
        if not self.enabled or family is None:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._usable(family, wait_s=0.05) is not None:
                    return True
                if self._families[family].zygote is None:
                    return False  # failed: retried later
        return False

    def fork(
        self,
        runtime: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        endpoint_env: Mapping[str, str],
        fds: Sequence[int],
    ) -> tuple[int, Zygote] | None:
        """Fork a replica; None (reason logged) means: spawn it instead."""
        family = family_of(runtime)
        if not self.enabled:
            return None
        if family is None:
            log.debug("runtime %s has no zygote: spawning", runtime)
            return None
        if env.get(ENV_VISIBLE_DEVICES):
            log.info(
                "spawning (not forking) a %s replica: it has GPUs, and CUDA is only "
                "safe in a process that starts fresh",
                runtime,
            )
            return None
        bad = import_time_vars(endpoint_env)
        if bad:
            log.info(
                "spawning (not forking) a %s replica: its env sets %s, which a zygote "
                "would already have read",
                runtime,
                ", ".join(bad),
            )
            return None
        with self._lock:
            z = self._usable(family)
            if z is None:
                log.info("spawning a %s replica: %s", runtime, self._why_not(family))
                return None
            try:
                return z.fork(argv, env, fds), z
            except ZygoteError as e:
                self._give_up(family, f"start request failed: {e}")
                log.warning("zygote %s failed (%s): spawning instead", family, e)
                return None

    def exit_code(self, zygote: Zygote, pid: int) -> int | None:
        """The exit code of a forked replica (None if its zygote is gone or did not reap it)."""
        with self._lock:
            if not zygote.alive():
                return None
            try:
                exited, code = zygote.exit_code(pid)
            except ZygoteError as e:
                log.warning("zygote %s: exit code of %d unknown: %s", zygote.family, pid, e)
                return None
            return code if exited else None

    def close(self) -> None:
        """Stop every zygote (forked replicas are not touched)."""
        with self._lock:
            self._closed = True
            zygotes = [f.zygote for f in self._families.values() if f.zygote is not None]
            self._families.clear()
        for z in zygotes:
            z.close()

    def _usable(self, family: str, wait_s: float = 0.0) -> Zygote | None:
        """The family's ready zygote, or None (starting one if there is none)."""
        state = self._families.setdefault(family, _Family())
        z = state.zygote
        if z is None:
            if self._closed or time.monotonic() < state.retry_at:
                return None
            try:
                state.zygote = Zygote(family, self.python, self.run_dir / f"zygote-{family}.log")
            except OSError as e:
                self._give_up(family, f"could not start: {e}")
                return None
            log.info("starting the %s zygote (pid %d)", family, state.zygote.pid)
            return None
        try:
            if not z.check_ready(wait_s):
                return None
        except ZygoteError as e:
            self._give_up(family, str(e))
            log.warning("zygote %s: %s; spawning until it is back", family, e)
            return None
        if not z.alive():
            self._give_up(family, f"exited ({z._exit()})")
            log.warning("zygote %s exited; spawning until it is back", family)
            return None
        state.failures = 0
        return z

    def _why_not(self, family: str) -> str:
        state = self._families.get(family)
        if self._closed:
            return "the backend is closing"
        if state is None or state.zygote is not None:
            return f"the {family} zygote is still importing"
        wait = max(0.0, state.retry_at - time.monotonic())
        return f"the {family} zygote failed ({state.reason}); next try in {wait:.0f}s"

    def _give_up(self, family: str, reason: str) -> None:
        state = self._families.setdefault(family, _Family())
        if state.zygote is not None:
            zygote, state.zygote = state.zygote, None
            with contextlib.suppress(Exception):
                zygote.close(timeout=1.0)
        state.failures += 1
        state.reason = reason
        first, most = RETRY_AFTER_S
        state.retry_at = time.monotonic() + min(first * 2 ** (state.failures - 1), most)


# ---------------------------------------------------------------------- adoption records


def fork_record_path(status_path: Path) -> Path:
    """`<run>/<replica>.fork.json` beside `<run>/<replica>.status.json`."""
    name = status_path.name.removesuffix(".status.json")
    return status_path.with_name(name + FORK_RECORD_SUFFIX)


def process(pid: int) -> psutil.Process | None:
    """A handle on a forked child (None if it is already gone)."""
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def write_fork_record(status_path: Path, pid: int, env: Mapping[str, str]) -> None:
    """What a later server needs to adopt a forked replica: its command line and
    environment are the zygote's, so the usual identity check cannot recognise it, and
    the memory limit cannot be read back from its environment."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return
    record = {"pid": pid, "create_time": created, "env": dict(env)}
    path = fork_record_path(status_path)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)


def adoptable_fork(proc: psutil.Process, status_path: Path) -> dict[str, str] | None:
    """If `proc` is the forked replica that the fork record names (same pid, same start
    time, a zygote's command line): the environment recorded for it. Else None."""
    record = processes.read_status(fork_record_path(status_path))
    if not record:
        return None
    try:
        if (
            record.get("pid") != proc.pid
            or abs(float(record.get("create_time", 0.0)) - proc.create_time()) > 0.5
            or proc.status() == psutil.STATUS_ZOMBIE
            or "podium.replica.zygote" not in proc.cmdline()
        ):
            return None
    except (psutil.Error, TypeError, ValueError):
        return None
    env = record.get("env")
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def remove_fork_record(status_path: Path) -> None:
    fork_record_path(status_path).unlink(missing_ok=True)


# ---------------------------------------------------------------------- start reports

_PHASE_MARKS = (
    ("import", "main", "imported"),
    ("load", "imported", "loaded"),
    ("listen", "loaded", "listening"),
)


def startup_report(status: Mapping[str, Any], mode: str, launched_at: float) -> ReplicaStartup:
    """Durations of a start's phases from the replica's status file (`times`, written by
    `podium.replica.main`): fork|spawn (asked for → replica code running), import, load,
    listen. Phases not reached yet are absent."""
    raw = status.get("times")
    times = {k: float(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    phases: dict[str, float] = {}
    if "main" in times and launched_at:
        phases[mode] = round(max(0.0, times["main"] - launched_at), 4)
    for name, begin, end in _PHASE_MARKS:
        if begin in times and end in times:
            phases[name] = round(max(0.0, times[end] - times[begin]), 4)
    return ReplicaStartup(
        start_mode=str(status.get("start_mode") or mode),
        launched_at=launched_at,
        phases=phases,
        listening_at=times.get("listening"),
    )
