"""OS process helpers for the local backend: signals, memory, identity, exit codes, log tails.

Every function here tolerates races with the process it looks at (it may exit, turn into a
zombie or be reaped at any moment) and never raises for a process that is gone.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

_MIB = 1024 * 1024
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


def listen_socket(host: str, backlog: int) -> socket.socket:
    """A listening TCP socket on an OS-chosen port, inheritable so a child can serve on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group led by `pid` (to `pid` alone if it leads none).

    The caller guarantees that `pid` still names its process (a Popen not yet reaped, or a
    psutil.Process that `is_running()`), so the pid cannot have been reused.
    """
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_leftover_group(pgid: int) -> None:
    """SIGKILL what is left of a process group whose leader has just been reaped."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def children_map() -> dict[int, list[int]]:
    """pid -> pids of its children, for every process on the machine (one scan of /proc)."""
    kids: dict[int, list[int]] = {}
    for p in psutil.process_iter(["ppid"]):
        ppid = p.info.get("ppid")
        if ppid:
            kids.setdefault(ppid, []).append(p.pid)
    return kids


def tree_rss_mib(pid: int, kids: Mapping[int, list[int]]) -> int | None:
    """Resident memory of a process and all its descendants in MiB (None if it is gone).

    `kids` comes from `children_map()`, built once for every replica checked in one pass.
    """
    try:
        total = psutil.Process(pid).memory_info().rss
    except _GONE:
        return None
    stack = list(kids.get(pid, ()))
    seen = {pid}
    while stack:
        child = stack.pop()
        if child in seen:
            continue
        seen.add(child)
        stack.extend(kids.get(child, ()))
        with contextlib.suppress(*_GONE):
            total += psutil.Process(child).memory_info().rss
    return total // _MIB


def has_exited(proc: psutil.Process) -> bool:
    """True once the process is gone, a zombie, or its pid now names another process."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except _GONE:
        return True


def is_replica_of(proc: psutil.Process, replica_id: str) -> bool:
    """True if `proc` is a live `podium.replica` process for `replica_id` (guards pid reuse)."""
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        argv = proc.cmdline()
    except _GONE:
        return False
    if "podium.replica" not in argv:
        return False
    pairs = itertools.pairwise(argv)
    return any(a == "--replica-id" and b == replica_id for a, b in pairs)


def process_env(proc: psutil.Process, key: str) -> str | None:
    """One environment variable of another process (None if unreadable)."""
    try:
        return proc.environ().get(key)
    except (*_GONE, OSError):
        return None


def reap(pid: int) -> tuple[bool, int | None]:
    """Reap `pid` if it is an exited child of ours: (reaped, exit code as Popen reports it).

    Not our child (or already reaped elsewhere) gives (False, None).
    """
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False, None
    if done == 0:
        return False, None
    return True, os.waitstatus_to_exitcode(status)


def describe_exit(code: int | None) -> str:
    """`exit code 1` or `exit code -9 (signal SIGKILL)`."""
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"exit code {code} (signal {name})"
    return f"exit code {code}"


def read_status(path: Path) -> dict[str, Any]:
    """The replica's status file as a dict ({} if missing or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
