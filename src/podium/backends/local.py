"""The local backend: every replica is a `python -m podium.replica` OS process on this machine.

The backend binds each replica's listening socket itself (port 0, so the port is known at
once without a race) and hands the file descriptor to the child. Replicas run in their own
session, so they survive a crash of the server and a new server can `adopt` them.

Replicas of external frameworks (`command`, vllm, tgi, …) run their own server program
instead, on a port it binds itself (`external.py` builds and checks the command).

The `Backend` methods are async, but what they do here blocks (forks, spawns, signals
under the table's lock, process-tree walks): each runs its blocking body in a worker thread,
so the controller's event loop never waits for it. Starts run on a small pool of their own
(`START_WORKERS` threads, "podium-start"): a start holds its thread for seconds (a digest
hash, a zygote request), and on the loop's default executor a few batches of them would
leave `poll`, `stop` and `kill` queued behind. Every other call uses `asyncio.to_thread`.
One lock guards the table of managed replicas, which those threads share. Logs
(`local_logs.LocalLogs`), exit causes and what `startup` reads have locks of their own, so
the API's and the gateway's threads and the controller's loop never wait for a start or a
poll.

Closing: a start's thread outlives the task that awaited it (a cancelled task cannot stop a
thread), so `close` marks the backend closing under the table's lock before it takes the
table; a start that reaches its spawn later raises `Unavailable` instead of leaving a
replica nobody knows about (no store row, so never adopted, never stopped).

The model of a replica is found (or fetched) on this machine by `model_cache.ModelCache`:
`prepare` looks at a download without waiting, `start` resolves the folder (checking a
repository model's digest) in its worker thread before it launches anything.

Forking and this lock: `start` holds `_lock` while a zygote forks and while
`subprocess.Popen` forks, but no child ever runs with a copy of it. A zygote is a process
of its own, started by fork+exec: it forks itself, and its children inherit the zygote's
memory, never the server's. `Popen` (no `preexec_fn` anywhere in Podium) runs no Python
code between fork and exec, and exec replaces the copied memory, locked or not. The server
process never calls `os.fork()` without an exec (test_local_fork_safety.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from podium.artifacts.sources import NodeCache
from podium.backends import external, processes, zygote_pool
from podium.backends.adopted import adoptable
from podium.backends.base import (
    AdoptCandidate,
    Backend,
    LogFollower,
    ModelSource,
    ObservedReplica,
    Preparation,
    ReplicaLaunch,
    ReplicaResources,
    ReplicaStartup,
)
from podium.backends.launch import ENV_INSTANCE_TYPE, ENV_MEMORY_LIMIT, replica_command
from podium.backends.local_logs import LocalLogs
from podium.backends.managed import HOST, ManagedReplica, cause, remove_status, wait_exited
from podium.backends.model_cache import ModelCache
from podium.backends.resources import ResourceMeter, Target
from podium.core.clock import Clock, SystemClock
from podium.core.errors import Conflict, Unavailable
from podium.core.phases import ExitReason
from podium.core.settings import Settings

LISTEN_BACKLOG = 2048
KEPT_EXIT_CAUSES = 1024
START_WORKERS = 4  # starts under way at once (the controller runs at most 4 batches)
CLOSING = "the backend is closing"


class LocalBackend:
    """Replicas as OS processes on this machine (see the module docstring)."""

    name = "local"

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        python: str = sys.executable,
        start_mode: str | None = None,  # fork | spawn; default: PODIUM_START_MODE, else fork
        models: ModelCache | None = None,  # default: the node cache under settings.cache_dir
    ) -> None:
        self._settings = settings
        self.models = models or ModelCache(NodeCache(settings.cache_dir), settings.download)
        mode = start_mode or zygote_pool.default_start_mode()
        self.zygotes = zygote_pool.ZygotePool(settings.run_dir, python=python, mode=mode)
        self._clock: Clock = clock or SystemClock()
        self._python = python
        self._lock = threading.Lock()
        self._replicas: dict[str, ManagedReplica] = {}
        self.replica_logs = LocalLogs(settings.logs_dir, settings.log_retention)
        # Replica -> why it ended (recent ones), under its own lock: the gateway's event loop
        # reads it (`exit_cause`) and must never wait for `_lock`, which `poll` holds across
        # process-tree walks and `start` across forks.
        self._ended: OrderedDict[str, str] = OrderedDict()
        self._ended_lock = threading.Lock()
        # Replica -> (status path, start mode, launched at): what `startup` reads, a plain
        # call from the controller's loop, so under a lock of its own as well.
        self._launches: dict[str, tuple[Path, str, float]] = {}
        self._launches_lock = threading.Lock()
        self._closing = False  # set under `_lock` by `close`: no start spawns after it
        # Threads start on first use (ThreadPoolExecutor starts them as work comes).
        self._start_pool = ThreadPoolExecutor(START_WORKERS, thread_name_prefix="podium-start")
        self._meter = ResourceMeter()  # CPU, memory, GPU of the replicas (metrics history)

    # ------------------------------------------------------------------ models

    async def prepare(self, model: ModelSource) -> Preparation:
        """Ready at once for a repository model or an offline Hub (checked at start); for an
        `hf://` model, starts its download or reports its progress (`ModelCache`).

        On the caller's thread, not a worker's: a download child dies with the *thread*
        that started it (`PR_SET_PDEATHSIG`, see `artifacts.download`), and the controller's
        loop thread lives as long as the server. The work is a process start or a size
        check at most every `MEASURE_EVERY_S`, as it was when the controller did it."""
        return self.models.prepare(model)

    async def retain(self, models: Iterable[ModelSource]) -> None:
        wanted = list(models)
        await asyncio.to_thread(self.models.retain, wanted)

    # ------------------------------------------------------------------ start

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        """On the starts' own pool (see the module docstring); `Unavailable` once closing."""
        run = contextvars.copy_context().run  # as asyncio.to_thread does
        try:
            future = asyncio.get_running_loop().run_in_executor(
                self._start_pool, run, self._start, launch
            )
        except RuntimeError as e:  # the pool is shut down: closed
            raise Unavailable(CLOSING, field="replica") from e
        return await future

    def _start(self, launch: ReplicaLaunch) -> ObservedReplica:
        if self._closing:  # queued before `close`: spare the model lookup (checked again)
            raise Unavailable(CLOSING, field="replica")
        model_path = self.models.path(launch.model)  # LoadError: not here, or not it
        if external.is_external(launch):
            return self._start_external(launch, model_path)
        with self._lock:
            self._check_startable(launch.replica_id)
            log_path = self.replica_logs.open_for(launch.endpoint, launch.replica_id)
            status_path = self._status_path(launch.replica_id)
            status_path.parent.mkdir(parents=True, exist_ok=True)
            status_path.unlink(missing_ok=True)

            sock = processes.listen_socket(HOST, LISTEN_BACKLOG)
            try:
                port = sock.getsockname()[1]
                argv, env = replica_command(
                    launch, model_path, sock.fileno(), status_path, self._python
                )
                launched_at = time.time()
                with log_path.open("ab") as log:
                    fds = (sock.fileno(), log.fileno())
                    forked = self.zygotes.fork(launch.runtime, argv[3:], env, launch.env, fds)
                    popen: subprocess.Popen[bytes] | None = None
                    if forked is not None:
                        pid = forked[0]
                    else:
                        popen = subprocess.Popen(
                            argv,
                            pass_fds=(sock.fileno(),),
                            start_new_session=True,
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=env,
                            close_fds=True,
                        )
                        pid = popen.pid
            except OSError as e:
                raise Unavailable(
                    f"could not start replica {launch.replica_id}: {e}", field="replica"
                ) from e
            finally:
                sock.close()

            replica = ManagedReplica(
                replica_id=launch.replica_id,
                endpoint=launch.endpoint,
                revision=launch.revision,
                port=port,
                pid=pid,
                started_at=self._clock.now(),
                log_path=log_path,
                status_path=status_path,
                popen=popen,
                memory_mb=launch.instance_type.memory_mb,
                instance_type=launch.instance_type.name,
                cpus=launch.instance_type.cpus,
                gpus=launch.instance_type.gpus,
                start_mode="spawn" if forked is None else "fork",
                launched_at=launched_at,
            )
            if forked is not None:
                replica.forked_by, replica.proc = forked[1], zygote_pool.process(replica.pid)
                limits = {k: env[k] for k in (ENV_MEMORY_LIMIT, ENV_INSTANCE_TYPE)}
                zygote_pool.write_fork_record(status_path, replica.pid, limits)
            self._add(replica)
            self._prune_logs(launch.endpoint)
            return replica.observed()

    def _check_startable(self, replica_id: str) -> None:
        """Under `_lock`, before anything is spawned: not closing, not running already."""
        if self._closing:
            raise Unavailable(CLOSING, field="replica")
        if replica_id in self._replicas:
            raise Conflict(f"replica {replica_id} is already running", field="replica")

    def _add(self, replica: ManagedReplica) -> None:
        """Under `_lock`: the replica joins the table (and what `startup` reads)."""
        self._replicas[replica.replica_id] = replica
        with self._launches_lock:
            self._launches[replica.replica_id] = (
                replica.status_path,
                replica.start_mode,
                replica.launched_at,
            )

    def _forget(self, replica_id: str) -> None:
        """Under `_lock`: the replica leaves the table."""
        del self._replicas[replica_id]
        with self._launches_lock:
            self._launches.pop(replica_id, None)

    async def prewarm(self, runtime: str) -> None:
        """Start the zygote of this runtime's family now, so its next replica forks. Called
        every pass for each endpoint: no thread at all when there is nothing to do (no
        family, spawning, or its zygote already importing or ready)."""
        if self.zygotes.needs_prewarm(runtime):
            await asyncio.to_thread(self.zygotes.prewarm, runtime)

    def startup(self, replica_id: str) -> ReplicaStartup | None:
        """How a replica started and what each phase took (None: unknown replica). A plain
        call from the controller's loop: one small status file of this node, found under a
        lock of its own (never `_lock`, which a start holds across a zygote request)."""
        with self._launches_lock:
            known = self._launches.get(replica_id)
        if known is None:
            return None
        path, mode, launched_at = known
        return zygote_pool.startup_report(processes.read_status(path), mode, launched_at)

    def _start_external(self, launch: ReplicaLaunch, model_path: Path) -> ObservedReplica:
        """Framework `command` or a preset: the server itself is the replica process
        (`external.py`); LoadError when it cannot run here."""
        limits = {
            ENV_MEMORY_LIMIT: str(launch.instance_type.memory_mb),
            ENV_INSTANCE_TYPE: launch.instance_type.name,
        }
        run_dir = self._settings.run_dir
        plan = external.plan(
            launch, model_path, run_dir=run_dir, python=self._python, extra_env=limits
        )
        with self._lock:
            self._check_startable(launch.replica_id)
            log_path = self.replica_logs.open_for(launch.endpoint, launch.replica_id)
            popen = external.spawn(plan, log_path)
            replica = ManagedReplica(
                replica_id=launch.replica_id,
                endpoint=launch.endpoint,
                revision=launch.revision,
                port=plan.port,
                pid=popen.pid,
                started_at=self._clock.now(),
                log_path=log_path,
                status_path=self._status_path(launch.replica_id),
                popen=popen,
                memory_mb=launch.instance_type.memory_mb,
                instance_type=launch.instance_type.name,
                cpus=launch.instance_type.cpus,
                gpus=launch.instance_type.gpus,
            )
            self._add(replica)
            self._prune_logs(launch.endpoint)
            return replica.observed()

    def _status_path(self, replica_id: str) -> Path:
        return self._settings.run_dir / f"{replica_id}.status.json"

    # ------------------------------------------------------------------ stop / kill

    async def stop(self, replica_id: str) -> None:
        """SIGTERM the replica's process group; `poll` kills it after the stop timeout.
        Unknown (already forgotten) replicas are ignored."""
        await asyncio.to_thread(self._stop, replica_id)

    def _stop(self, replica_id: str) -> None:
        with self._lock:
            replica = self._replicas.get(replica_id)
            if replica is None or replica.stop_deadline is not None:
                return
            replica.stop_deadline = self._clock.monotonic() + self._settings.control.stop_timeout_s
            if replica.running():
                processes.signal_group(replica.pid, signal.SIGTERM)

    async def kill(self, replica_id: str, reason: ExitReason) -> None:
        """SIGKILL the replica now; `poll` reports its exit with `reason`."""
        await asyncio.to_thread(self._kill_now, replica_id, reason)

    def _kill_now(self, replica_id: str, reason: ExitReason) -> None:
        with self._lock:
            replica = self._replicas.get(replica_id)
            if replica is not None:
                self._kill(replica, reason, None)

    def _kill(self, replica: ManagedReplica, reason: ExitReason, error: str | None) -> None:
        if replica.kill_reason is None:
            replica.kill_reason, replica.kill_error = reason, error
            if reason is ExitReason.OOM:  # known as soon as it is decided
                self._record_cause(replica.replica_id, cause(reason, error, None))
        if replica.running():
            processes.signal_group(replica.pid, signal.SIGKILL)

    # ------------------------------------------------------------------ poll

    async def poll(self) -> list[ObservedReplica]:
        """Reaps, escalates stops and walks process trees for memory: in a worker thread."""
        return await asyncio.to_thread(self._poll)

    def _poll(self) -> list[ObservedReplica]:
        with self._lock:
            out: list[ObservedReplica] = []
            kids: dict[int, list[int]] | None = None  # built at most once per poll
            for replica in list(self._replicas.values()):
                exited, code = self._check_exit(replica)
                if exited:
                    out.append(self._exit_report(replica, code))
                    self._forget(replica.replica_id)
                    continue
                if self._escalate(replica) or replica.memory_mb is None:
                    out.append(replica.observed())
                    continue
                kids = processes.children_map() if kids is None else kids
                self._enforce_memory(replica, replica.memory_mb, kids)
                out.append(replica.observed())
            return out

    def _check_exit(self, replica: ManagedReplica) -> tuple[bool, int | None]:
        """(exited, exit code if known); reaps the process."""
        if replica.popen is not None:
            code = replica.popen.poll()
            if code is None:
                return False, None
            processes.kill_leftover_group(replica.pid)  # orphaned children of the replica
            return True, code
        if replica.proc is not None and not processes.has_exited(replica.proc):
            return False, None
        if replica.forked_by is not None:
            processes.kill_leftover_group(replica.pid)
            return True, self.zygotes.exit_code(replica.forked_by, replica.pid)
        _, code = processes.reap(replica.pid)  # only succeeds if it happens to be our child
        return True, code

    def _escalate(self, replica: ManagedReplica) -> bool:
        """SIGKILL a replica past its stop deadline; True if it is being killed anyway."""
        if replica.kill_reason is not None or replica.escalated:
            return True
        deadline = replica.stop_deadline
        if deadline is not None and self._clock.monotonic() >= deadline:
            replica.escalated = True
            processes.signal_group(replica.pid, signal.SIGKILL)
            return True
        return False

    def _enforce_memory(
        self, replica: ManagedReplica, limit: int, kids: dict[int, list[int]]
    ) -> None:
        """SIGKILL a replica whose process tree uses more memory than its instance type."""
        used = processes.tree_rss_mib(replica.pid, kids)
        if used is not None and used > limit:
            error = (
                f"used {used} MiB, limit {limit} MiB "
                f"(instance type {replica.instance_type or 'unknown'})"
            )
            self._kill(replica, ExitReason.OOM, error)

    def _exit_report(self, replica: ManagedReplica, code: int | None) -> ObservedReplica:
        status = processes.read_status(replica.status_path)
        remove_status(replica.status_path)
        reason, error = replica.verdict(code, status, self._settings.control.stop_timeout_s)
        self._record_cause(replica.replica_id, cause(reason, error, code))
        return replica.exited(code, reason, error)

    def _record_cause(self, replica_id: str, cause: str) -> None:
        with self._ended_lock:
            self._ended[replica_id] = cause
            while len(self._ended) > KEPT_EXIT_CAUSES:
                self._ended.popitem(last=False)

    def exit_cause(self, replica_id: str) -> str | None:
        """Why the replica's process ended, in a few words (None: running or unknown).
        An out-of-memory kill is known as soon as it is decided. Never waits for `poll`
        or `start`."""
        with self._ended_lock:
            return self._ended.get(replica_id)

    # ------------------------------------------------------------------ adopt

    async def adopt(self, candidates: list[AdoptCandidate]) -> list[ObservedReplica]:
        return await asyncio.to_thread(self._adopt, candidates)

    def _adopt(self, candidates: list[AdoptCandidate]) -> list[ObservedReplica]:
        adopted: list[ObservedReplica] = []
        with self._lock:
            for c in candidates:
                if c.replica_id in self._replicas:
                    continue
                log_path = self.replica_logs.location(c.endpoint, c.replica_id, c.log_location)
                replica = adoptable(c, self._status_path(c.replica_id), log_path)
                if replica is None:
                    continue
                self._add(replica)
                self.replica_logs.remember(c.replica_id, replica.log_path)
                adopted.append(replica.observed())
        return adopted

    # ------------------------------------------------------------------ logs

    def _prune_logs(self, endpoint: str) -> None:
        """Keep the endpoint's newest `log_retention` log files (never a running one's)."""
        live = {r.replica_id for r in self._replicas.values() if r.endpoint == endpoint}
        self.replica_logs.prune(endpoint, live)

    async def forget_endpoint(self, endpoint: str) -> None:
        """The endpoint is deleted: its replicas' log files go with it."""
        await asyncio.to_thread(self.replica_logs.forget_endpoint, endpoint)

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        return self.replica_logs.logs(replica_id, tail)

    def kept_logs(self, endpoint: str) -> list[str]:
        return self.replica_logs.kept_logs(endpoint)

    def follow_logs(self, replica_id: str, tail: int | None) -> tuple[list[str], LogFollower]:
        return self.replica_logs.follow_logs(replica_id, tail)

    # ------------------------------------------------------------------ close

    async def resources(self, replica_ids: Iterable[str]) -> Mapping[str, ReplicaResources]:
        """CPU, memory and GPU of each replica's process tree (`resources`): in a thread
        (`_lock` may be held across a fork)."""
        return await asyncio.to_thread(self._resources, list(replica_ids))

    def _resources(self, replica_ids: list[str]) -> dict[str, ReplicaResources]:
        with self._lock:
            found = [r for rid in replica_ids if (r := self._replicas.get(rid)) is not None]
        types, targets = self._settings.instance_types, {}
        for r in found:
            kind = types.get(r.instance_type)
            cpus, gpus = r.cpus, r.gpus
            if cpus is None and kind is not None:  # adopted: its instance type's
                cpus, gpus = kind.cpus, kind.gpus
            targets[r.replica_id] = Target(r.pid, cpus, gpus)
        return self._meter.measure(targets)

    async def close(self, *, stop_replicas: bool = True) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after the stop timeout) and wait for
        them; with `stop_replicas=False` leave them running for a later `adopt`. Downloads
        in flight are cancelled; a start still under way raises `Unavailable` instead of
        spawning (see the module docstring)."""
        await asyncio.to_thread(self._close, stop_replicas)

    def _close(self, stop_replicas: bool) -> None:
        self.models.cancel_all()
        self._meter.close()
        with self._lock:
            self._closing = True
            replicas = list(self._replicas.values())
            self._replicas.clear()
        with self._launches_lock:
            self._launches.clear()
        # Not waited for: a start blocked on its model raises `Unavailable` when it goes on.
        self._start_pool.shutdown(wait=False)
        self.zygotes.close()  # forked replicas are in their own sessions: not affected
        if not stop_replicas:
            return
        for r in replicas:
            if r.running():
                processes.signal_group(r.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._settings.control.stop_timeout_s
        if not wait_exited(replicas, deadline):
            for r in replicas:
                if r.running():
                    processes.signal_group(r.pid, signal.SIGKILL)
            wait_exited(replicas, time.monotonic() + 5.0)
        for r in replicas:
            if r.popen is not None:
                processes.kill_leftover_group(r.pid)
            remove_status(r.status_path)


if TYPE_CHECKING:

    def _conforms(settings: Settings) -> Backend:
        return LocalBackend(settings)  # mypy checks LocalBackend against the Backend protocol
