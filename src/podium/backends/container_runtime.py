"""The local backend's container engine and what it asks of it for container replicas.

`ContainerRuntime` finds the engine on first use and keeps it (`find_engine`; a failure is
kept for `RETRY_FIND_S`, so a deploy of many container replicas on a node without an
engine does not probe for it once per replica), and wraps the engine calls the backend
makes: spawn the attached `run` client, wait for the container's main process, read its
state (`inspect`), kill and remove it, list this server's containers (by the
`podium.home` label), follow an adopted container's log. Every call is bounded
(`ContainerEngine.call`); the backend makes them off its table lock.

Out of memory: a container's kernel limit (`--memory`) kills the process that ran over it,
which need not be the container's main process (a worker, a CGI child). As Kubernetes does
with cgroup v2 (`memory.oom.group`), any such kill counts as the replica's: `oom_kills`
reads the count from the container's memory cgroup (v1 `memory.oom_control`, v2
`memory.events`), and the backend kills a container whose count went up, with the reason
out of memory. Only a cgroup of the container's own is counted (`oom_base`): one held to
the instance type's memory, not the server's. Where the engine runs no cgroup per
container the count is not watched; the engine's `OOMKilled` and the backend's own check
of the replica's memory remain.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from podium.backends.container_engine import ContainerEngine, find_engine
from podium.backends.containers import ContainerPlan
from podium.core.errors import LoadError, PodiumError, Unavailable
from podium.core.settings import ContainerSettings

log = logging.getLogger(__name__)

RETRY_FIND_S = 30.0  # a failed engine search is kept this long
WAIT_POLL_S = 0.05
# Client exit codes that mean the engine could not run the container at all (docker and
# podman alike): 125 the engine's own error, 126 the command cannot be invoked, 127 it is
# not found. Retrying cannot help: the start is a load error.
ENGINE_REFUSED = frozenset({125, 126, 127})
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_ROOT = Path("/proc")


@dataclass(frozen=True, slots=True)
class ContainerState:
    """What `inspect` says of one container."""

    running: bool
    pid: int  # its main process on this host (0 once it has ended)
    exit_code: int
    oom_killed: bool
    labels: dict[str, str]


class ContainerRuntime:
    """The engine (found once) and the calls the backend makes into it."""

    def __init__(self, settings: ContainerSettings, search_path: str | None = None) -> None:
        self.settings = settings
        self._search_path = search_path
        self._lock = threading.Lock()
        self._engine: ContainerEngine | None = None
        self._failure: tuple[float, LoadError] | None = None
        self._said_unenforced = False

    # ------------------------------------------------------------------ the engine

    def engine(self) -> ContainerEngine:
        """The engine; `LoadError` naming `container` when this node has none."""
        with self._lock:
            if self._engine is not None:
                return self._engine
            if self._failure is not None and time.monotonic() - self._failure[0] < RETRY_FIND_S:
                raise self._failure[1]
            try:
                self._engine = find_engine(self.settings, self._search_path)
            except LoadError as e:
                self._failure = (time.monotonic(), e)
                raise
            self._failure = None
            return self._engine

    def found(self) -> ContainerEngine | None:
        """The engine if there is one (looked for now if not yet), else None."""
        try:
            return self.engine()
        except PodiumError:
            return None

    def describe(self) -> str:
        """For the start-up line: "podman 4.3.1 (/usr/bin/podman)" or "none (why)"."""
        try:
            return self.engine().describe()
        except PodiumError as e:
            return f"none ({e})"

    # ------------------------------------------------------------------ start

    def spawn(self, plan: ContainerPlan, log_path: Path) -> subprocess.Popen[bytes]:
        """Write the plan's env file (0600) and files, start the attached `run` client in
        its own session, output appended to `log_path`. `Unavailable` on an OS error;
        `LoadError` naming `container.env` when the environment cannot be passed (a name
        with `=`, a NUL in a value: `Popen`'s `ValueError`). On any failure the env file,
        which holds every value and secret, is removed before the error goes on."""
        try:
            plan.env_file.parent.mkdir(parents=True, exist_ok=True)
            plan.env_file.unlink(missing_ok=True)
            fd = os.open(plan.env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(plan.env_text)
            for path, text in plan.files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            with log_path.open("ab") as out:
                return subprocess.Popen(
                    plan.argv,
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=plan.client_env,
                    close_fds=True,
                )
        except BaseException as e:
            plan.env_file.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise Unavailable(f"could not start {plan.argv[0]}: {e}", field="replica") from e
            if isinstance(e, ValueError):
                # Popen's words are fixed ("embedded null byte", "illegal environment
                # variable name"); anything longer might quote a value, which may be a secret.
                why = str(e) if len(str(e)) <= 80 and "=" not in str(e) else "invalid"
                raise LoadError(
                    f"the container's environment cannot be passed to {plan.argv[0]}: {why}",
                    field="container.env",
                ) from None
            raise

    def wait_running(
        self, engine: ContainerEngine, name: str, client: subprocess.Popen[bytes], timeout_s: float
    ) -> int | None:
        """The container's main pid once it runs; None when the client ended first or it
        did not run within `timeout_s` (the poll reports what happened)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and client.poll() is None:
            state = self.state(engine, name)
            if state is not None and state.running and state.pid > 0:
                return state.pid
            time.sleep(WAIT_POLL_S)
        return None

    def check_limits(self, pid: int, memory_mb: int) -> bool:
        """Whether the kernel holds the container (main process `pid`) to `memory_mb` in a
        memory cgroup of its own (`own_memory_cgroup`); a node where it does not (e.g.
        rootless podman on cgroup v1, which ignores `--memory` with a warning) is said once
        in the server's log. The backend's own check of the process tree's memory applies
        either way."""
        if own_memory_cgroup(pid, memory_mb):
            return True
        if not self._said_unenforced:
            self._said_unenforced = True
            held = memory_limit_mib(pid)
            log.warning(
                "container memory limits are not enforced by the kernel on this node (asked "
                "%d MiB, the container's cgroup holds %s): only Podium's own check of the "
                "replica's memory applies, and the cgroup's OOM kills are not counted",
                memory_mb,
                "no limit" if held is None else f"{held} MiB",
            )
        return False

    def oom_base(self, pid: int, memory_mb: int | None) -> int | None:
        """The OOM kill count of the container (main process `pid`, held to `memory_mb`)
        now, which later counts are compared with; None, and no count is watched, unless
        the cgroup is the container's own (`check_limits`) and its count is readable: a
        shared cgroup's kills are other processes', and an unreadable base is no base."""
        if memory_mb is None or not self.check_limits(pid, memory_mb):
            return None
        return oom_kills(pid)

    # ------------------------------------------------------------------ state

    def state(
        self, engine: ContainerEngine, name: str, *, timeout_s: float | None = None
    ) -> ContainerState | None:
        """`inspect` of the container (None: there is none by that name, or no answer
        within `timeout_s`, default the settings' `command_timeout_s`)."""
        fmt = "{{json .State}}\n{{json .Config.Labels}}"
        try:
            done = engine.call(["container", "inspect", "--format", fmt, name], timeout_s=timeout_s)
        except Unavailable as e:
            log.warning("container %s: %s", name, e)
            return None
        if done.returncode != 0:
            return None
        try:
            state_text, _, labels_text = done.stdout.strip().partition("\n")
            state, labels = json.loads(state_text), json.loads(labels_text or "null")
        except ValueError:
            return None
        return ContainerState(
            running=bool(state.get("Running")),
            pid=int(state.get("Pid") or 0),
            exit_code=int(state.get("ExitCode") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            labels=dict(labels or {}),
        )

    def remove(self, engine: ContainerEngine, name: str, *, timeout_s: float | None = None) -> bool:
        """Kill and remove the container now (nothing when there is none); False when the
        engine did not answer within `timeout_s` (default `command_timeout_s`)."""
        args = ["rm", "-f", name] if engine.name == "docker" else ["rm", "-f", "-t", "0", name]
        try:
            engine.call(args, timeout_s=timeout_s)
        except Unavailable as e:
            log.warning("container %s could not be removed: %s", name, e)
            return False
        return True

    def signal(self, engine: ContainerEngine, name: str, signal_name: str) -> None:
        """`ENGINE kill --signal SIG NAME` (KILL ends it at once; the poll reports it)."""
        try:
            engine.call(["kill", "--signal", signal_name, name])
        except Unavailable as e:
            log.warning("container %s: kill --signal %s: %s", name, signal_name, e)

    def ours(
        self, engine: ContainerEngine, home: str, *, timeout_s: float | None = None
    ) -> list[str] | None:
        """The names of the containers (running or not) this server's home labelled; None
        when the engine did not answer within `timeout_s` (default `command_timeout_s`)."""
        try:
            done = engine.call(
                ["ps", "-a", "--filter", f"label=podium.home={home}", "--format", "{{.Names}}"],
                timeout_s=timeout_s,
            )
        except Unavailable as e:
            log.warning("listing this server's containers: %s", e)
            return None
        return [n.strip() for n in done.stdout.splitlines() if n.strip()]

    def follow_log(
        self, engine: ContainerEngine, name: str, log_path: Path, since: float
    ) -> subprocess.Popen[bytes] | None:
        """`ENGINE logs -f --since SINCE NAME` appending to the replica's log (an adopted
        container whose client is gone); None when it cannot start. Ends with the
        container. A follower an earlier server left (it was killed) is ended first, so no
        line is written twice."""
        end_followers(engine.program, name)
        try:
            with log_path.open("ab") as out:
                return subprocess.Popen(
                    [engine.program, "logs", "-f", "--since", f"{since:.3f}", name],
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                )
        except OSError as e:
            log.warning("container %s: its log cannot be followed: %s", name, e)
            return None


def remove_leftovers(run_dir: Path) -> None:
    """Remove the single-use secret files a server killed mid-start left in `run_dir`: a
    pull's private registry login (`registry-auth-*`, `container_auth.pull_auth`) and a
    replica's env file (`*.container.env`, removed once its container runs). Called when
    the backend is made, before any start of this server can have written one."""
    try:
        leftovers = [*run_dir.glob("registry-auth-*"), *run_dir.glob("*.container.env")]
    except OSError:
        return
    for path in leftovers:
        log.info("removing %s, left by an earlier server", path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()


def end_followers(program: str, name: str) -> None:
    """SIGTERM every `PROGRAM logs -f … NAME` process on this node (one scan of /proc)."""
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info.get("cmdline") or []
        ours = len(argv) > 3 and argv[0] == program and argv[1:3] == ["logs", "-f"]
        if ours and argv[-1] == name:
            with contextlib.suppress(psutil.Error):
                proc.terminate()


def memory_cgroup(pid: int) -> tuple[bool, Path] | None:
    """`pid`'s memory cgroup: (cgroup v1, its folder under the cgroup root); None when not
    readable (e.g. the process is gone)."""
    try:
        lines = (_PROC_ROOT / str(pid) / "cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # cgroup v1
            return True, _CGROUP_ROOT / "memory" / path.lstrip("/")
        if controllers == "" and line.startswith("0::"):  # cgroup v2 (unified)
            return False, _CGROUP_ROOT / path.lstrip("/")
    return None


def own_memory_cgroup(pid: int, memory_mb: int) -> bool:
    """Whether `pid` (a container's main process) has a memory cgroup of its own: the
    kernel holds it to `memory_mb`, the container's `--memory`, and it is not this server's
    cgroup. Not so when the engine runs no cgroup per container (rootless podman on cgroup
    v1, `--cgroups=disabled`, a cgroup manager that fell back): the cgroup is then the
    user's session or service, which other processes share."""
    found = memory_cgroup(pid)
    if found is None or memory_limit_mib(pid) != memory_mb:
        return False
    return found != memory_cgroup(os.getpid())


def oom_kills(pid: int) -> int | None:
    """How many processes the kernel killed for memory in `pid`'s memory cgroup (None:
    not readable, e.g. the process is gone)."""
    found = memory_cgroup(pid)
    if found is None:
        return None
    v1, folder = found
    return _counter(folder / ("memory.oom_control" if v1 else "memory.events"))


def _counter(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return None


def memory_limit_mib(pid: int) -> int | None:
    """The memory limit the kernel enforces on `pid`'s cgroup, in MiB (None: none or not
    readable): whether a container's `--memory` holds on this machine."""
    found = memory_cgroup(pid)
    if found is None:
        return None
    v1, folder = found
    try:
        text = (folder / ("memory.limit_in_bytes" if v1 else "memory.max")).read_text(
            encoding="utf-8"
        )
    except OSError:
        return None
    text = text.strip()
    if not text.isdigit() or int(text) >= 1 << 62:
        return None
    return int(text) // (1024 * 1024)
