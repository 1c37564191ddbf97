"""The server's claim on its home: one server per `PODIUM_HOME`, private to its user.

`claim_home(settings)` runs first in `podium up`, before the database is migrated or any
replica adopted:

1. creates `PODIUM_HOME` (mode 0700) if it is missing;
2. takes an exclusive `flock` on `PODIUM_HOME/server.lock` and writes the server's address
   and PID into it. A second server on the same home finds the lock held and stops with
   `Conflict` naming the first one, having changed nothing. The kernel drops the lock when
   the process ends, however it ends (the file descriptor is close-on-exec, so replicas and
   zygotes never hold it);
3. makes the home private: a home that other users can enter is chmod-ed to 0700 (with one
   warning), and the database files directly in it to 0600. `serve()` also sets the umask
   to 0o077, so everything the server and its replicas create later is owner-only.

Several server processes on PostgreSQL (`podium server`, issue 16) may share one home: the
replicas' node cache, their logs, artifacts and files are the machine's, and the controller
that leads is chosen by the database, not by this lock. Each such process takes
`server.lock` *shared* and `server-<server id>.lock` exclusively (the id is `--server-id`,
by default the port: two processes cannot serve one port on one machine anyway). So two
processes with one id stop as two `podium up` do, and a `podium up` (exclusive) and
`podium server`s (shared) never run on one home at once: `podium up` stops the replicas
when it stops, and would adopt replicas that a leader elsewhere manages.

`bind(host, port)` opens the listening socket before anything else happens, so a port in
use is one clear error before a replica is touched (uvicorn gets the bound socket).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from podium.core.errors import Conflict, Invalid, Unavailable
from podium.core.settings import Settings

log = logging.getLogger("podium.server")

LOCK_FILE = "server.lock"
UMASK = 0o077
HOME_MODE = 0o700
FILE_MODE = 0o600
# Files directly in the home that an older Podium created with the default umask.
_PRIVATE_FILES = ("podium.db", "podium.db-wal", "podium.db-shm", LOCK_FILE)


@dataclass
class HomeLock:
    """The held lock on a home (released by `release()` or when the process exits)."""

    path: Path
    fd: int
    shared_fd: int = -1  # `server.lock` held shared, for one of several servers

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = -1
        if self.shared_fd >= 0:
            os.close(self.shared_fd)
            self.shared_fd = -1


def claim_home(settings: Settings, *, server_id: str | None = None) -> HomeLock:
    """Lock `settings.home` for this server and make it private (see the module doc).

    `server_id` None: this server alone on the home (`podium up`, or any server on SQLite);
    else one of several server processes on PostgreSQL, named `server_id`."""
    home = settings.home
    home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    if server_id is None:
        lock = _lock(home / LOCK_FILE, settings.public_url)
    else:
        lock = _lock_shared(home, server_id, settings.public_url)
    make_private(home)
    return lock


def server_lock_name(server_id: str) -> str:
    """The lock file of one of several servers on a home (`server_id` checked: a name, not
    a path)."""
    if (
        not server_id
        or len(server_id) > 64
        or not all(c.isalnum() or c in "-_." for c in server_id)
    ):
        raise Invalid(
            f"server id {server_id!r} must be 1-64 letters, digits, '-', '_' or '.'",
            field="server_id",
        )
    return f"server-{server_id}.lock"


def _lock_shared(home: Path, server_id: str, url: str) -> HomeLock:
    """`server.lock` shared (kept open with the other) and `server-<id>.lock` exclusive."""
    name = server_lock_name(server_id)
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        holder = _read_holder(fd)
        os.close(fd)
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        raise Conflict(
            f"podium up ({holder}) runs on PODIUM_HOME {home}; stop it before starting "
            "podium server processes there, or use another PODIUM_HOME",
            field="PODIUM_HOME",
        ) from None
    try:
        own = _lock(home / name, url)
    except BaseException:
        os.close(fd)
        raise
    return HomeLock(own.path, own.fd, shared_fd=fd)


def make_private(home: Path) -> None:
    """chmod a home that others can enter to 0700 (warning once) and its db files to 0600."""
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "PODIUM_HOME %s was readable by other users (mode %o); changed it to %o",
            home,
            mode,
            HOME_MODE,
        )
        home.chmod(HOME_MODE)
    for name in _PRIVATE_FILES:
        path = home / name
        try:
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(FILE_MODE)
        except FileNotFoundError:
            continue


def _lock(path: Path, url: str) -> HomeLock:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = _read_holder(fd)
        os.close(fd)
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        raise Conflict(
            f"another Podium server ({holder}) is already running on PODIUM_HOME "
            f"{path.parent}; stop it first, or use another PODIUM_HOME",
            field="PODIUM_HOME",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "url": url}).encode() + b"\n", 0)
    return HomeLock(path, fd)


def _read_holder(fd: int) -> str:
    """`pid N at URL` from the lock file of the server holding it, as far as it is written."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(info['pid'])} at {info['url']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "still starting"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or `Unavailable` in one line if it is taken.

    IPv4 unless `host` is an IPv6 literal (has a ':'): `localhost` may resolve to ::1 first,
    and a server listening on ::1 alone is not reached at 127.0.0.1 (its `public_url`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as e:
        raise Unavailable(f"cannot listen on {host}:{port}: {e.strerror}", field="host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        hint = " (another program is using it: stop it, or choose --port / PODIUM_PORT)"
        raise Unavailable(
            f"cannot listen on {host}:{port}: {e.strerror or e}"
            + (hint if e.errno == errno.EADDRINUSE else ""),
            field="port",
        ) from None
    return sock
