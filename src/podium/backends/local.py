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

GPUs: the backend keeps the node's inventory (`gpu_inventory.GpuInventory`, from NVML when
the backend is made). A start takes the replica's GPUs before anything is spawned and sets
`CUDA_VISIBLE_DEVICES` to them ("" for a replica that asks for none); when fewer are free
it raises `NoRoom` and spawns nothing. The poll gives them back once the process has
ended; an adopted replica re-reserves what its environment names. `room_for` answers the
controller's question before it starts (`base.HasRoom`).

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
import logging
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from podium.artifacts.sources import NodeCache
from podium.backends import containers, external, processes, zygote_pool
from podium.backends.adopted import adoptable, container_adoptable
from podium.backends.base import (
    AdoptCandidate,
    Backend,
    HasRoom,
    LogFollower,
    ModelSource,
    ObservedReplica,
    Preparation,
    ReplicaLaunch,
    ReplicaResources,
    ReplicaSize,
    ReplicaStartup,
    RunsContainers,
)
from podium.backends.container_pull import ensure_image
from podium.backends.container_runtime import (
    ENGINE_REFUSED,
    ContainerRuntime,
    ContainerState,
    oom_kills,
    remove_leftovers,
)
from podium.backends.gpu_inventory import GpuInventory, visible
from podium.backends.launch import ENV_INSTANCE_TYPE, ENV_MEMORY_LIMIT, replica_command
from podium.backends.local_logs import LocalLogs
from podium.backends.managed import HOST, ManagedReplica, cause, remove_status, wait_exited
from podium.backends.model_cache import ModelCache
from podium.backends.replica_env import ENV_VISIBLE_DEVICES
from podium.backends.resources import ResourceMeter, Target
from podium.core.clock import Clock, SystemClock
from podium.core.errors import Conflict, LoadError, NoRoom, Unavailable
from podium.core.phases import ExitReason
from podium.core.resources_spec import gpu_count, too_few_gpus
from podium.core.settings import Settings

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 2048
KEPT_EXIT_CAUSES = 1024
START_WORKERS = 4  # starts under way at once (the controller runs at most 4 batches)
CLOSING = "the backend is closing"
# Each engine call a poll pass makes (inspect, ps, rm) waits at most this long (`_PassEngine`).
POLL_ENGINE_S = 2.0


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
        gpus: GpuInventory | None = None,  # default: this node's (`GpuInventory.detect`)
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
        self.gpus = gpus if gpus is not None else GpuInventory.detect()
        # Container replicas (`container_runtime`): the engine, found on first use.
        self.containers = ContainerRuntime(settings.containers)
        remove_leftovers(settings.run_dir)  # secrets a killed server left mid-start
        self._home_label = containers.home_label(settings.home)
        self._deferred: list[Callable[[], None]] = []  # engine calls to make off `_lock`
        self._strays_checked = False  # this server's leftover containers removed (once)

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

    def room_for(self, size: ReplicaSize, without: Collection[str] = ()) -> int | None:
        """How many more replicas of `size` this node's free GPUs can take now, or once the
        replicas `without` have ended (their GPUs back); None for a replica that asks for
        no GPU (CPU and memory are not reserved here), or for more than the node has (its
        start fails with the reason: no wait could help)."""
        if size.gpus <= 0 or size.gpus > self.gpus.total:
            return None
        return self.gpus.free(without) // size.gpus

    def _start(self, launch: ReplicaLaunch) -> ObservedReplica:
        if self._closing:  # queued before `close`: spare the model lookup (checked again)
            raise Unavailable(CLOSING, field="replica")
        model_path = self.models.path(launch.model)  # LoadError: not here, or not it
        devices = self._take_gpus(launch)
        try:
            if containers.is_container(launch):
                return self._start_container(launch, model_path, devices)
            if external.is_external(launch):
                return self._start_external(launch, model_path, devices)
            return self._start_replica(launch, model_path, devices)
        except BaseException:
            with self._lock:  # not started: its GPUs go back (unless it ran already)
                if launch.replica_id not in self._replicas:
                    self.gpus.release(launch.replica_id)
            raise

    def _take_gpus(self, launch: ReplicaLaunch) -> str:
        """Reserve the replica's GPUs: their `CUDA_VISIBLE_DEVICES`; `NoRoom` when fewer
        are free (nothing spawned, nothing reserved), `LoadError` when the node has fewer
        than it asks for at all (the API refuses such a deploy; this catches the rest)."""
        wanted, total = launch.size.gpus, self.gpus.total
        if wanted > total:  # never fits: the revision cannot run here
            raise LoadError(too_few_gpus(launch.instance_type.name, wanted, total))
        devices = self.gpus.assign(launch.replica_id, wanted)
        if devices is None:
            free = self.gpus.free()
            raise NoRoom(
                f"waiting for GPUs: replica {launch.replica_id} needs {gpu_count(wanted)}, "
                f"{free} of this node's {total} free",
                field="instance_type",
            )
        return visible(devices)

    def _start_replica(
        self, launch: ReplicaLaunch, model_path: Path, devices: str
    ) -> ObservedReplica:
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
                    launch, model_path, sock.fileno(), status_path, self._python, devices
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
                visible_devices=devices,
                start_mode="spawn" if forked is None else "fork",
                launched_at=launched_at,
            )
            if forked is not None:
                replica.forked_by, replica.proc = forked[1], zygote_pool.process(replica.pid)
                limits = {
                    k: env[k] for k in (ENV_MEMORY_LIMIT, ENV_INSTANCE_TYPE, ENV_VISIBLE_DEVICES)
                }
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
        """Under `_lock`: the replica's process has ended; it leaves the table and its GPUs
        are free again."""
        del self._replicas[replica_id]
        self.gpus.release(replica_id)
        with self._launches_lock:
            self._launches.pop(replica_id, None)

    def container_engine(self) -> str:
        """`base.RunsContainers`: the engine container replicas run with (found now)."""
        return self.containers.describe()

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

    def _start_external(
        self, launch: ReplicaLaunch, model_path: Path, devices: str
    ) -> ObservedReplica:
        """Framework `command` or a preset: the server itself is the replica process
        (`external.py`); LoadError when it cannot run here."""
        limits = {
            ENV_MEMORY_LIMIT: str(launch.instance_type.memory_mb),
            ENV_INSTANCE_TYPE: launch.instance_type.name,
            ENV_VISIBLE_DEVICES: devices,
        }
        run_dir = self._settings.run_dir
        plan = external.plan(
            launch, model_path, run_dir=run_dir, python=self._python, extra_env=limits
        )
        with self._lock:
            self._check_startable(launch.replica_id)
            log_path = self.replica_logs.open_for(launch.endpoint, launch.replica_id)
            popen = external.spawn(plan, log_path)
            replica = self._server_replica(launch, plan.port, popen, log_path, devices)
            self._add(replica)
            self._prune_logs(launch.endpoint)
            return replica.observed()

    def _server_replica(
        self,
        launch: ReplicaLaunch,
        port: int,
        popen: subprocess.Popen[bytes],
        log_path: Path,
        devices: str,
    ) -> ManagedReplica:
        """The watched process of a server that binds its own port: an external server's,
        or a container's `run` client."""
        it = launch.instance_type
        return ManagedReplica(
            replica_id=launch.replica_id,
            endpoint=launch.endpoint,
            revision=launch.revision,
            port=port,
            pid=popen.pid,
            started_at=self._clock.now(),
            log_path=log_path,
            status_path=self._status_path(launch.replica_id),
            popen=popen,
            memory_mb=it.memory_mb,
            instance_type=it.name,
            cpus=it.cpus,
            gpus=it.gpus,
            visible_devices=devices,
        )

    def _start_container(
        self, launch: ReplicaLaunch, model_path: Path, devices: str
    ) -> ObservedReplica:
        """Framework `container` or a preset from its image (`containers.py`): find the
        engine, get the image (`pull_policy`), start the attached `run` client; the client
        is the replica's process, watched like an external server's. `LoadError` when the
        node has no engine, the image cannot be had, or the engine refuses to run it."""
        engine = self.containers.engine()
        run_dir = self._settings.run_dir
        plan = containers.plan(
            launch, model_path, engine, home=self._settings.home, run_dir=run_dir, devices=devices
        )
        ensure_image(engine, plan.image, plan.pull_policy, launch.registry_credentials, run_dir)
        with self._lock:
            self._check_startable(launch.replica_id)
            log_path = self.replica_logs.open_for(launch.endpoint, launch.replica_id)
            popen = self.containers.spawn(plan, log_path)
            replica = self._server_replica(launch, plan.port, popen, log_path, devices)
            replica.container = plan.name
            self._add(replica)
            self._prune_logs(launch.endpoint)
        try:  # off the lock: the engine creates the container (about a second)
            pid = self.containers.wait_running(
                engine, plan.name, popen, engine.settings.command_timeout_s
            )
        finally:
            plan.env_file.unlink(missing_ok=True)  # the client has read it by now
        if pid is None and popen.poll() in ENGINE_REFUSED:
            self._refused(replica, engine.name)
        memory_mb = launch.instance_type.memory_mb
        base = self.containers.oom_base(pid, memory_mb) if pid is not None else None
        with self._lock:
            replica.container_pid, replica.oom_kills = pid, base
        return replica.observed()

    def _refused(self, replica: ManagedReplica, engine: str) -> None:
        """The engine would not run the container (exit code 125-127 before it ran): a
        load error with the engine's last line, never a restart."""
        with self._lock:
            if self._replicas.get(replica.replica_id) is replica:
                self._forget(replica.replica_id)
        tail = self.replica_logs.logs(replica.replica_id, 5)
        assert replica.container is not None and replica.popen is not None
        self._remove_container(replica.container)
        errors = [line.strip() for line in tail if line.lower().startswith("error")]
        last = (errors or [t.strip() for t in tail] or [""])[-1]
        last = last or processes.describe_exit(replica.popen.returncode)
        raise LoadError(f"{engine} could not run the container: {last}", field="container")

    def _remove_container(self, name: str) -> None:
        """`ENGINE rm -f NAME` (off `_lock`); nothing without an engine."""
        engine = self.containers.found()
        if engine is not None:
            self.containers.remove(engine, name)

    def _defer_container(self, replica: ManagedReplica, action: str) -> None:
        """Under `_lock`: an engine call for `replica`'s container, made once the lock is
        released (`_run_deferred`): "TERM" or "KILL" (signals), or "rm" (kill, remove);
        after a KILL or rm its client is killed too, should it still run."""
        name = replica.container
        if name is None:
            return

        def call() -> None:
            engine = self.containers.found()
            if engine is not None and action == "rm":
                self.containers.remove(engine, name)
            elif engine is not None:
                self.containers.signal(engine, name, action)
            if action != "TERM" and replica.has_client:  # the client, should it linger
                with self._lock:
                    if replica.running():
                        processes.signal_group(replica.pid, signal.SIGKILL)

        self._deferred.append(call)

    def _run_deferred(self) -> None:
        with self._lock:
            calls, self._deferred = self._deferred, []
        for call in calls:
            call()

    def _status_path(self, replica_id: str) -> Path:
        return self._settings.run_dir / f"{replica_id}.status.json"

    # ------------------------------------------------------------------ stop / kill

    async def stop(self, replica_id: str) -> None:
        """SIGTERM the replica's process group; `poll` kills it after the stop timeout.
        Unknown (already forgotten) replicas are ignored."""
        await asyncio.to_thread(self._stop, replica_id)

    def _stop(self, replica_id: str) -> None:
        """A container replica's client passes SIGTERM on to the container (`--sig-proxy`);
        a container adopted without its client gets it from the engine."""
        with self._lock:
            replica = self._replicas.get(replica_id)
            if replica is None or replica.stop_deadline is not None:
                return
            replica.stop_deadline = self._clock.monotonic() + self._settings.control.stop_timeout_s
            if replica.running():
                if replica.has_client:
                    processes.signal_group(replica.pid, signal.SIGTERM)
                else:
                    self._defer_container(replica, "TERM")
        self._run_deferred()

    async def kill(self, replica_id: str, reason: ExitReason) -> None:
        """SIGKILL the replica now; `poll` reports its exit with `reason`."""
        await asyncio.to_thread(self._kill_now, replica_id, reason)

    def _kill_now(self, replica_id: str, reason: ExitReason) -> None:
        with self._lock:
            replica = self._replicas.get(replica_id)
            if replica is not None:
                self._kill(replica, reason, None)
        self._run_deferred()

    def _kill(self, replica: ManagedReplica, reason: ExitReason, error: str | None) -> None:
        if replica.kill_reason is None:
            replica.kill_reason, replica.kill_error = reason, error
            if reason is ExitReason.OOM:  # known as soon as it is decided
                self._record_cause(replica.replica_id, cause(reason, error, None))
        if replica.running():
            if replica.container is not None:  # it outlives a killed client: the engine
                self._defer_container(replica, "rm")  # removes it, then the client goes
            else:
                processes.signal_group(replica.pid, signal.SIGKILL)

    # ------------------------------------------------------------------ poll

    async def poll(self) -> list[ObservedReplica]:
        """Reaps, escalates stops and walks process trees for memory: in a worker thread."""
        return await asyncio.to_thread(self._poll)

    def _poll(self) -> list[ObservedReplica]:
        turn = _PassEngine(self.containers)
        if not self._strays_checked:  # no adoption ran (the store named no replica)
            names = turn.ours(self._home_label)
            if turn.engine is None or names is not None:  # else: the next pass asks again
                self._strays_checked = True
            if names:
                self._remove_strays(set(names), turn)
        ended: list[tuple[ManagedReplica, int | None]] = []  # containers: reported off the lock
        unknown: list[ManagedReplica] = []  # containers whose main process is not known yet
        with self._lock:
            out: list[ObservedReplica] = []
            kids: dict[int, list[int]] | None = None  # built at most once per poll
            for replica in list(self._replicas.values()):
                exited, code = self._check_exit(replica)
                if exited:
                    if replica.container is not None:
                        ended.append((replica, code))
                    else:
                        out.append(self._exit_report(replica, code))
                    self._forget(replica.replica_id)
                    continue
                if self._escalate(replica) or replica.memory_mb is None:
                    out.append(replica.observed())
                    continue
                if replica.container is not None and replica.container_pid is None:
                    unknown.append(replica)  # its container was slow to start
                if replica.container is not None:
                    self._check_container_oom(replica, replica.memory_mb)
                kids = processes.children_map() if kids is None else kids
                self._enforce_memory(replica, replica.memory_mb, kids)
                out.append(replica.observed())
        self._run_deferred()
        out += [self._container_exit(replica, code, turn) for replica, code in ended]
        for replica in unknown:
            self._find_container_pid(replica, turn)
        return out

    def _find_container_pid(self, replica: ManagedReplica, turn: _PassEngine) -> None:
        """Off `_lock`: the main process of a container that did not run yet when its start
        returned (`wait_running` gave up), once it does (asked again each pass)."""
        if replica.container is None:
            return
        state = turn.state(replica.container)
        if state is not None and state.running and state.pid > 0:
            base = self.containers.oom_base(state.pid, replica.memory_mb)
            with self._lock:
                replica.container_pid, replica.oom_kills = state.pid, base

    def _check_container_oom(self, replica: ManagedReplica, limit: int) -> None:
        """Under `_lock`: the kernel killed a process of the container for memory (its
        `--memory` limit): the replica ran out of memory (`container_runtime`). Only for a
        container with a memory cgroup of its own (`ContainerRuntime.oom_base`)."""
        base = replica.oom_kills
        if replica.container_pid is None or base is None or replica.kill_reason is not None:
            return
        kills = oom_kills(replica.container_pid)
        if kills is not None and kills > base:
            error = (
                f"out of memory: limit {limit} MiB (instance type "
                f"{replica.instance_type or 'unknown'}); the kernel killed a process of the "
                "container"
            )
            self._kill(replica, ExitReason.OOM, error)

    def _container_exit(
        self, replica: ManagedReplica, code: int | None, turn: _PassEngine
    ) -> ObservedReplica:
        """The exit report of a container replica (off `_lock`): its container's exit code
        and OOMKilled, then the container is removed. A client that ended while its
        container runs on (killed by someone) takes the container with it. An engine that
        does not answer in time (`_PassEngine`) leaves the client's exit code as the
        report, and the removal to a thread of its own."""
        replica.stop_log_follower()
        assert replica.container is not None
        engine = turn.engine
        state = turn.state(replica.container)
        turn.remove(replica.container)
        reason: ExitReason | None = None
        error: str | None = None
        if state is not None and state.running and replica.kill_reason is None:
            reason, error = (
                ExitReason.CRASHED,
                (
                    f"the {engine.name if engine else 'engine'} client ended "
                    f"({processes.describe_exit(code)}) while its container ran; container removed"
                ),
            )
        elif state is not None:
            code = code if replica.has_client and code is not None else state.exit_code
            if state.oom_killed and replica.kill_reason is None:
                reason, error = (
                    ExitReason.OOM,
                    (
                        f"out of memory: limit {replica.memory_mb} MiB (instance type "
                        f"{replica.instance_type or 'unknown'})"
                    ),
                )
        if reason is None:
            reason, error = replica.verdict(code, {}, self._settings.control.stop_timeout_s)
        self._record_cause(replica.replica_id, cause(reason, error, code))
        return replica.exited(code, reason, error)

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
            if replica.container is not None:  # a killed client leaves it running
                self._defer_container(replica, "KILL")
            else:
                processes.signal_group(replica.pid, signal.SIGKILL)
            return True
        return False

    def _enforce_memory(
        self, replica: ManagedReplica, limit: int, kids: dict[int, list[int]]
    ) -> None:
        """SIGKILL a replica whose process tree uses more memory than its instance type."""
        root = replica.measured_pid
        if root is None:
            return
        used = processes.tree_rss_mib(root, kids)
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
        """Processes first (`adopted.adoptable`); a container replica whose client is gone
        but whose container runs is adopted by the container (off the lock: engine calls),
        its log followed again (`ENGINE logs -f`). Containers of this server (by the
        `podium.home` label) that nobody adopted are removed (by the first `poll` when no
        adoption ran: the controller adopts before its first poll, and starts after it)."""
        adopted: list[ObservedReplica] = []
        self._strays_checked = True
        engine = self.containers.found()  # one listing of this server's containers
        ours = set((self.containers.ours(engine, self._home_label) if engine else None) or [])
        found = [(c, self._adoptable(c, ours)) for c in candidates]
        with self._lock:
            for c, replica in found:
                if c.replica_id in self._replicas or replica is None:
                    if replica is not None:
                        replica.stop_log_follower()
                    continue
                self._add(replica)
                kind = self._settings.instance_types.get(replica.instance_type)
                wanted = kind.gpus if kind is not None else None  # `custom`: as recorded
                self.gpus.adopt(c.replica_id, replica.visible_devices, wanted)
                self.replica_logs.remember(c.replica_id, replica.log_path)
                adopted.append(replica.observed())
        self._remove_strays(ours)
        return adopted

    def _adoptable(self, c: AdoptCandidate, ours: set[str]) -> ManagedReplica | None:
        """Candidate `c` as a replica to watch (`_adopt`), or None. `ours`: the names of
        this server's containers (only those are asked about)."""
        log_path = self.replica_logs.location(c.endpoint, c.replica_id, c.log_location)
        status_path = self._status_path(c.replica_id)
        replica = adoptable(c, status_path, log_path)
        if replica is not None and replica.container is None:
            return replica
        name = containers.container_name(c.replica_id)
        engine = self.containers.found()
        if engine is None or name not in ours:
            return replica  # a process replica, or a container nobody can ask about
        state = self.containers.state(engine, name)
        if replica is not None:  # its client runs: the container's process is measured
            if state is not None and state.running:
                replica.container_pid = state.pid
                memory = state.labels.get(containers.LABEL_MEMORY_MB, "")
                limit = int(memory) if memory.isdigit() else None
                replica.oom_kills = self.containers.oom_base(state.pid, limit)
            return replica
        replica = container_adoptable(c, state, self._home_label, status_path, log_path)
        if replica is None:
            return None
        replica.oom_kills = self.containers.oom_base(replica.pid, replica.memory_mb)
        since = log_path.stat().st_mtime if log_path.exists() else time.time()
        replica.log_follower = self.containers.follow_log(engine, name, log_path, since)
        return replica

    def _remove_strays(self, names: set[str], turn: _PassEngine | None = None) -> None:
        """Remove this server's containers (`names`, listed before adoption) that no
        replica of the table runs in (their replica ended with the last server, or was not
        adopted). One started since the listing is not in it. `turn`: a poll pass's."""
        engine = self.containers.found()
        if engine is None:
            return
        with self._lock:
            live = {r.container for r in self._replicas.values() if r.container is not None}
        for name in sorted(names):
            if name not in live:
                log.info("removing container %s: no replica of this server runs in it", name)
                if turn is not None:
                    turn.remove(name)
                else:
                    self.containers.remove(engine, name)

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
            if (root := r.measured_pid) is not None:
                targets[r.replica_id] = Target(root, cpus, gpus)
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
        for r in replicas:
            r.stop_log_follower()  # a later server follows an adopted container's log anew
        if not stop_replicas:
            return
        engine = self.containers.found() if any(r.container for r in replicas) else None
        for r in replicas:
            if r.running() and r.has_client:
                processes.signal_group(r.pid, signal.SIGTERM)  # a client passes it on
            elif r.running() and engine is not None and r.container is not None:
                self.containers.signal(engine, r.container, "TERM")
        deadline = time.monotonic() + self._settings.control.stop_timeout_s
        if not wait_exited(replicas, deadline):
            for r in replicas:
                if r.running() and engine is not None and r.container is not None:
                    self.containers.signal(engine, r.container, "KILL")
                if r.running() and r.has_client:
                    processes.signal_group(r.pid, signal.SIGKILL)
            wait_exited(replicas, time.monotonic() + 5.0)
        for r in replicas:
            if r.popen is not None:
                processes.kill_leftover_group(r.pid)
            if engine is not None and r.container is not None:
                self.containers.remove(engine, r.container)  # none left behind
            remove_status(r.status_path)


class _PassEngine:
    """The engine calls of one poll pass (`_poll`: a late container's `inspect`, an ended
    one's `inspect` and `rm`, the first pass's listing), bounded so that an engine held up
    (its storage lock taken by a multi-GB pull, say) delays the controller's pass by about
    `POLL_ENGINE_S`, not by N x `command_timeout_s`: each call waits at most
    `POLL_ENGINE_S`, and once one ran that long the pass asks nothing more (an `inspect`
    is asked again next pass; an `rm` goes to a thread of its own, with the full timeout)."""

    def __init__(self, runtime: ContainerRuntime) -> None:
        self._runtime = runtime
        self.engine = runtime.found()
        self._stuck = False

    def state(self, name: str) -> ContainerState | None:
        """`inspect` of `name`; None: none, or no answer in time (or earlier this pass)."""
        if self.engine is None or self._stuck:
            return None
        started = time.monotonic()
        state = self._runtime.state(self.engine, name, timeout_s=POLL_ENGINE_S)
        self._stuck = time.monotonic() - started >= POLL_ENGINE_S
        return state

    def ours(self, home: str) -> list[str] | None:
        """This server's containers (`ContainerRuntime.ours`); None: no answer in time."""
        if self.engine is None or self._stuck:
            return None
        started = time.monotonic()
        names = self._runtime.ours(self.engine, home, timeout_s=POLL_ENGINE_S)
        self._stuck = time.monotonic() - started >= POLL_ENGINE_S
        return names

    def remove(self, name: str) -> None:
        """`rm -f` now, or in a thread of its own when the engine is slow."""
        engine = self.engine
        if engine is None:
            return
        if not self._stuck:
            started = time.monotonic()
            if self._runtime.remove(engine, name, timeout_s=POLL_ENGINE_S):
                return
            self._stuck = time.monotonic() - started >= POLL_ENGINE_S
        threading.Thread(
            target=self._runtime.remove,
            args=(engine, name),
            name="podium-container-rm",
            daemon=True,
        ).start()


if TYPE_CHECKING:

    def _conforms(settings: Settings) -> Backend:
        return LocalBackend(settings)  # mypy checks LocalBackend against the Backend protocol

    def _has_room(settings: Settings) -> HasRoom:
        return LocalBackend(settings)

    def _runs_containers(settings: Settings) -> RunsContainers:
        return LocalBackend(settings)
