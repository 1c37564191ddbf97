"""The Ray backend: each replica is placed by Ray on a node of a cluster and serves HTTP on
that node's address; the gateway forwards to it as to a local replica.

One replica = one detached, named Ray actor (`ray_replica.ReplicaHost`, named by the replica
id in the namespace "podium") that asks Ray for the instance type's CPUs, memory and GPUs
and is spread across nodes (`SPREAD`); the actor fetches the model into its node's cache,
checks the digest, and runs `python -m podium.replica` as its child. Every call into Ray
goes through `ray_calls.RayApi` (`RayCalls`; a fake in unit tests), and each is awaited with
a timeout, so the controller's loop never blocks on Ray: placement and the model's fetch
happen inside `start` (a task of its own), `poll` asks every actor at once.

What `poll` reports:

- the replica's process exited on its own or after a stop: its verdict from the status
  file (load failed, out of memory, crashed, stopped), then the actor is killed so Ray frees
  its resources;
- the actor is gone (killed here, its node died, Ray lost it): the replica exited with the
  reason of our own kill, else `LOST`; the controller starts a replacement, which Ray puts
  on a node that is still there;
- an actor that has not answered `LOST_AFTER_MISSES` polls in a row (a node cut off) is
  killed and reported `LOST` too.

Logs stay on the nodes; `logs`, `kept_logs` and `follow_logs` ask the actor (blocking calls
with a timeout, from the API's threads). The last lines of a replica that exited are kept
here (those of a node that died cannot be). Start phases come from the replica's status
file, read by `poll` (`startup` answers from memory, or reads it once more, bounded, when
the last poll came just before the replica wrote it); `resources` asks each actor (psutil
on its node).

Framework `container` (and a preset with a `container` block) is refused by `start` with a
`LoadError` naming `container` (`RAY_CONTAINER_REFUSAL` says why and what to do); the API
refuses such a deploy first when the server's backend is Ray.

A server that stops with `stop_replicas=False` (or crashes) leaves the actors running: the
next server finds them by name (`adopt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from podium.backends import processes, zygote_pool
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
from podium.backends.managed import cause
from podium.backends.ray_calls import ActorGone, CallTimeout, Placement, RayApi, RayCalls
from podium.backends.ray_fetch import FetchAccess
from podium.backends.ray_replica import ReplicaHost
from podium.core.clock import Clock, SystemClock
from podium.core.errors import Conflict, LoadError, Unavailable
from podium.core.phases import ExitReason
from podium.core.settings import Settings

log = logging.getLogger("podium.backends")

START_TIMEOUT_S = 600.0  # placement + the model's fetch on the node + the process start
CALL_TIMEOUT_S = 5.0  # a state, a signal, a log read
STARTUP_READ_S = 0.2  # `startup`'s one read on the controller's loop (see there)
LOST_AFTER_MISSES = 5  # polls in a row without an answer: the replica is lost
KEPT_TAIL = 200  # lines of an exited replica's log kept here
KEPT_EXITS = 1024
MIB = 2**20
# Ray's own container support (`runtime_env={"image_uri": …}`) runs the Ray *worker* inside
# the image, so the image must hold Ray and the cluster's Python, and every node needs
# podman: it cannot run "any image that serves HTTP", which is what `container` means.
RAY_CONTAINER_REFUSAL = (
    "container endpoints do not run on the ray backend: Ray runs its own worker inside an "
    "image (which must then contain Ray and the cluster's Python), not any image serving "
    "HTTP. Run this endpoint on a server with the local backend (PODIUM_BACKEND=local) and "
    "a container engine (podman, or docker with its daemon)"
)


@dataclass(slots=True)
class _Placed:
    """One replica this backend placed (or adopted)."""

    replica_id: str
    endpoint: str
    revision: int
    handle: Any
    host: str
    port: int
    started_at: datetime
    pid: int | None = None
    node: str = ""
    launched_at: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)  # the replica's status file
    stop_deadline: float | None = None
    escalated: bool = False
    kill_reason: ExitReason | None = None
    misses: int = 0

    def observed(self, **ended: Any) -> ObservedReplica:
        return ObservedReplica(
            replica_id=self.replica_id,
            endpoint=self.endpoint,
            revision=self.revision,
            host=self.host,
            port=self.port,
            started_at=self.started_at,
            alive=not ended,
            pid=self.pid,
            log_location=f"ray:{self.node}" if self.node else "ray",
            start_mode="spawn",
            **ended,
        )


class RayBackend:
    """Replicas as Ray actors on a cluster (see the module docstring)."""

    name = "ray"

    def __init__(
        self,
        settings: Settings,
        access: FetchAccess,
        *,
        calls: RayApi | None = None,
        clock: Clock | None = None,
        node_root: str | None = None,  # where nodes keep caches and logs (None: their tmp)
    ) -> None:
        self._settings = settings
        self._access = access
        self._calls: RayApi = calls or RayCalls(settings.ray_address)
        self._clock: Clock = clock or SystemClock()
        self._node_root = node_root
        self._lock = threading.Lock()  # the API's threads read the tables below
        self._placed: dict[str, _Placed] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()  # replica -> why it ended
        # replica -> (endpoint, its last lines) for replicas that ended (the log reader's)
        self._tails: OrderedDict[str, tuple[str, list[str]]] = OrderedDict()
        self._closing = False

    # ------------------------------------------------------------------ models

    async def prepare(self, model: ModelSource) -> Preparation:
        """Ready at once: the replica's actor fetches the model on its own node (checked
        against the digest there), so there is nothing to fetch here."""
        return Preparation.ready()

    async def retain(self, models: Iterable[ModelSource]) -> None:
        """Nothing is fetched here (the nodes keep their caches)."""

    # ------------------------------------------------------------------ start

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        """Place the actor, let it fetch the model and start the replica; returns once the
        process runs on its node. `LoadError` when the model cannot be had there,
        `Unavailable` when Ray cannot place it (or its node dies) in time."""
        if launch.container is not None:
            raise LoadError(RAY_CONTAINER_REFUSAL, field="container")
        if launch.command is not None:
            raise LoadError(
                "framework `command` and server presets are not supported on the ray backend",
                field="framework",
            )
        with self._lock:
            if self._closing:
                raise Unavailable("the backend is closing", field="replica")
            if launch.replica_id in self._placed:
                raise Conflict(f"replica {launch.replica_id} is already running", field="replica")
        size = launch.instance_type
        placement = Placement(
            name=launch.replica_id,
            cpus=size.cpus,
            gpus=size.gpus,
            memory_bytes=size.memory_mb * MIB,
        )
        grace = self._settings.control.stop_timeout_s
        handle = await self._calls.create(
            placement, ReplicaHost, launch, self._access, self._node_root, grace
        )
        try:
            answer = await self._calls.call(handle, "start", timeout=START_TIMEOUT_S)
        except (ActorGone, CallTimeout) as e:
            await self._kill_quietly(handle)
            raise Unavailable(
                f"replica {launch.replica_id} could not be placed on Ray: {e}", field="replica"
            ) from e
        except BaseException:  # cancelled (closing): leave no actor behind
            await asyncio.shield(self._kill_quietly(handle))
            raise
        if "error" in answer:
            await self._kill_quietly(handle)
            error = str(answer["error"])
            if answer.get("load"):
                raise LoadError(error, field="model")
            raise Unavailable(error, field="replica")
        placed = _Placed(
            replica_id=launch.replica_id,
            endpoint=launch.endpoint,
            revision=launch.revision,
            handle=handle,
            host=str(answer["host"]),
            port=int(answer["port"]),
            started_at=self._clock.now(),
            pid=int(answer["pid"]),
            node=str(answer["node"]),
            launched_at=float(answer["launched_at"]),
        )
        with self._lock:
            closing = self._closing
            if not closing:
                self._placed[placed.replica_id] = placed
        if closing:
            await self._kill_quietly(handle)
            raise Unavailable("the backend is closing", field="replica")
        log.info(
            "replica %s placed on Ray node %s at %s:%s",
            placed.replica_id,
            placed.node[:12],
            placed.host,
            placed.port,
        )
        return placed.observed()

    def startup(self, replica_id: str) -> ReplicaStartup | None:
        """From the replica's status file as the last `poll` read it (a plain call).

        The controller asks when a readiness probe first passes; the replica writes its
        start times just before it serves, so a probe can pass between a `poll` and the
        next. Then, and only then, the status is read from the actor once more: the one
        Ray call made on the controller's loop, once per replica start, bounded by
        `STARTUP_READ_S` (past it the phases reported are those known)."""
        with self._lock:
            placed = self._placed.get(replica_id)
            if placed is None:
                return None
            status, launched_at, handle = dict(placed.status), placed.launched_at, placed.handle
        if "listening" not in (status.get("times") or {}):
            try:
                state = self._calls.call_blocking(handle, "state", timeout=STARTUP_READ_S)
            except (ActorGone, CallTimeout, Unavailable):
                state = {}
            status = state.get("status") or status
            with self._lock:
                placed.status = status
        return zygote_pool.startup_report(status, "spawn", launched_at)

    # ------------------------------------------------------------------ stop / kill

    async def stop(self, replica_id: str) -> None:
        """SIGTERM the replica on its node; `poll` kills the actor past the stop timeout."""
        with self._lock:
            placed = self._placed.get(replica_id)
            if placed is None or placed.stop_deadline is not None:
                return
            placed.stop_deadline = self._clock.monotonic() + self._settings.control.stop_timeout_s
        # Unanswered: `poll` sees the actor gone, or escalates at the deadline.
        with contextlib.suppress(ActorGone, CallTimeout):
            await self._calls.call(placed.handle, "terminate", timeout=CALL_TIMEOUT_S)

    async def kill(self, replica_id: str, reason: ExitReason) -> None:
        """Kill the actor (its replica dies with it); `poll` reports `reason`."""
        with self._lock:
            placed = self._placed.get(replica_id)
            if placed is None:
                return
            if placed.kill_reason is None:
                placed.kill_reason = reason
        await self._kill_now(placed.handle)

    async def _kill_now(self, handle: Any) -> None:
        """SIGKILL the replica, then the actor (killing only the actor would give the
        replica its graceful stop: right for a lost node, not for a kill)."""
        with contextlib.suppress(ActorGone, CallTimeout):
            await self._calls.call(handle, "kill_replica", timeout=CALL_TIMEOUT_S)
        await self._kill_quietly(handle)

    async def _kill_quietly(self, handle: Any) -> None:
        try:
            await self._calls.kill(handle)
        except Unavailable as e:
            log.warning("could not kill a Ray actor: %s", e)

    # ------------------------------------------------------------------ poll

    async def poll(self) -> list[ObservedReplica]:
        """Asks every actor at once (each with a timeout); see the module docstring."""
        with self._lock:
            placed = list(self._placed.values())
        answers = await asyncio.gather(*(self._state(p) for p in placed))
        out: list[ObservedReplica] = []
        for p, answer in zip(placed, answers, strict=True):
            report = await self._judge(p, answer)
            out.append(report)
            if not report.alive:
                with self._lock:
                    self._placed.pop(p.replica_id, None)
        return out

    async def _state(self, placed: _Placed) -> dict[str, Any] | BaseException:
        try:
            answer: dict[str, Any] = await self._calls.call(
                placed.handle, "state", timeout=CALL_TIMEOUT_S
            )
        except (ActorGone, CallTimeout) as e:
            return e
        return answer

    async def _judge(self, p: _Placed, answer: dict[str, Any] | BaseException) -> ObservedReplica:
        if isinstance(answer, ActorGone):
            return self._ended_report(
                p, None, self._gone_reason(p), f"its Ray actor ended: {answer}"
            )
        if isinstance(answer, BaseException):  # CallTimeout
            p.misses += 1
            if p.misses < LOST_AFTER_MISSES:
                return p.observed()
            await self._kill_quietly(p.handle)
            return self._ended_report(
                p, None, ExitReason.LOST, f"its Ray actor did not answer {p.misses} times"
            )
        p.misses = 0
        with self._lock:
            p.status = answer.get("status") or {}
        if answer.get("alive"):
            await self._escalate(p)
            return p.observed()
        code = answer.get("exit_code")
        reason, error = self._verdict(p, code)
        await self._keep_tail(p)
        await self._kill_quietly(p.handle)  # frees its resources on the node
        return self._ended_report(p, code, reason, error)

    def _gone_reason(self, p: _Placed) -> ExitReason:
        if p.kill_reason is not None:
            return p.kill_reason
        if p.stop_deadline is not None:
            return ExitReason.STOPPED
        return ExitReason.LOST

    def _verdict(self, p: _Placed, code: int | None) -> tuple[ExitReason, str | None]:
        """As the local backend reads an exit (`managed.ManagedReplica.verdict`)."""
        state = p.status.get("state")
        if state == "out_of_memory":
            return ExitReason.OOM, str(p.status.get("error") or "out of memory")
        if p.kill_reason is not None:
            return p.kill_reason, f"killed: {processes.describe_exit(code)}"
        if p.stop_deadline is not None:
            return ExitReason.STOPPED, None
        if state == "load_failed":
            return ExitReason.LOAD_FAILED, str(p.status.get("error") or "")
        return ExitReason.CRASHED, processes.describe_exit(code)

    async def _escalate(self, p: _Placed) -> None:
        deadline = p.stop_deadline
        if deadline is None or p.escalated or self._clock.monotonic() < deadline:
            return
        p.escalated, p.kill_reason = True, ExitReason.STOPPED
        await self._kill_now(p.handle)

    def _ended_report(
        self, p: _Placed, code: int | None, reason: ExitReason, error: str | None
    ) -> ObservedReplica:
        with self._lock:
            self._ended[p.replica_id] = cause(reason, error, code)
            while len(self._ended) > KEPT_EXITS:
                self._ended.popitem(last=False)
        if reason is not ExitReason.STOPPED:
            log.info("replica %s on Ray: %s (%s)", p.replica_id, reason.value, error)
        return p.observed(exit_code=code, exit_reason=reason, error=error)

    async def _keep_tail(self, p: _Placed) -> None:
        try:
            lines = await self._calls.call(p.handle, "logs", KEPT_TAIL, timeout=CALL_TIMEOUT_S)
        except (ActorGone, CallTimeout):
            return
        self._remember_tail(p.replica_id, p.endpoint, list(lines))

    def _remember_tail(self, replica_id: str, endpoint: str, lines: list[str]) -> None:
        with self._lock:
            self._tails[replica_id] = (endpoint, lines)
            while len(self._tails) > KEPT_EXITS:
                self._tails.popitem(last=False)

    def exit_cause(self, replica_id: str) -> str | None:
        """Why the replica ended, in a few words (None: running or unknown)."""
        with self._lock:
            return self._ended.get(replica_id)

    # ------------------------------------------------------------------ adopt

    async def adopt(self, candidates: list[AdoptCandidate]) -> list[ObservedReplica]:
        """The named actors of a previous server's replicas that still run their replica.
        A cluster that cannot be reached raises `Unavailable` (the controller tries again
        next pass) rather than answering "none": its replicas may well be running."""
        if candidates:
            await self._calls.connect()
        adopted: list[ObservedReplica] = []
        for c in candidates:
            with self._lock:
                if c.replica_id in self._placed:
                    continue
            try:
                handle = await self._calls.lookup(c.replica_id)
                if handle is None:
                    continue
                state = await self._calls.call(handle, "state", timeout=CALL_TIMEOUT_S)
                where = await self._calls.call(handle, "where", timeout=CALL_TIMEOUT_S)
            except (ActorGone, CallTimeout, Unavailable) as e:
                log.info("replica %s not adopted from Ray: %s", c.replica_id, e)
                continue
            if not state.get("alive"):
                await self._kill_quietly(handle)
                continue
            placed = _Placed(
                replica_id=c.replica_id,
                endpoint=c.endpoint,
                revision=c.revision,
                handle=handle,
                host=c.host,
                port=c.port,
                started_at=c.started_at,
                pid=c.pid,
                node=str(where.get("node", "")),
                launched_at=float(state.get("launched_at") or 0.0),
                status=state.get("status") or {},
            )
            with self._lock:
                self._placed[c.replica_id] = placed
            adopted.append(placed.observed())
        return adopted

    # ------------------------------------------------------------------ logs

    def _handle(self, replica_id: str) -> Any | None:
        with self._lock:
            placed = self._placed.get(replica_id)
        return None if placed is None else placed.handle

    def _kept_tail(self, replica_id: str) -> list[str]:
        with self._lock:
            kept = self._tails.get(replica_id)
        return [] if kept is None else list(kept[1])

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        handle = self._handle(replica_id)
        if handle is None:
            return self._kept_tail(replica_id)[-tail:] if tail > 0 else []
        try:
            lines: list[str] = self._calls.call_blocking(
                handle, "logs", tail, timeout=CALL_TIMEOUT_S
            )
        except (ActorGone, CallTimeout, Unavailable):
            return self._kept_tail(replica_id)[-tail:] if tail > 0 else []
        return lines

    def kept_logs(self, endpoint: str) -> list[str]:
        with self._lock:
            ended = [rid for rid, (ep, _) in self._tails.items() if ep == endpoint]
            running = sorted(
                (p for p in self._placed.values() if p.endpoint == endpoint),
                key=lambda p: p.launched_at,
            )
        return [*ended, *(p.replica_id for p in running if p.replica_id not in ended)]

    def follow_logs(self, replica_id: str, tail: int | None) -> tuple[list[str], LogFollower]:
        handle = self._handle(replica_id)
        if handle is None:
            lines = self._kept_tail(replica_id)
            return (lines[-tail:] if tail else []), _NoMoreLines()
        try:
            lines, offset = self._calls.call_blocking(
                handle, "follow_from_tail", tail, timeout=CALL_TIMEOUT_S
            )
        except (ActorGone, CallTimeout, Unavailable):
            return [], _NoMoreLines()
        return list(lines), _ActorFollower(self._calls, handle, int(offset))

    async def forget_endpoint(self, endpoint: str) -> None:
        """The endpoint is deleted: the lines kept here go (the nodes' files stay until
        their temporary folders are cleaned)."""
        with self._lock:
            for rid in [rid for rid, (ep, _) in self._tails.items() if ep == endpoint]:
                del self._tails[rid]

    # ------------------------------------------------------------------ resources

    async def resources(self, replica_ids: Iterable[str]) -> Mapping[str, ReplicaResources]:
        with self._lock:
            placed = [p for rid in replica_ids if (p := self._placed.get(rid)) is not None]

        async def one(p: _Placed) -> dict[str, Any] | None:
            try:
                got: dict[str, Any] | None = await self._calls.call(
                    p.handle, "resources", timeout=CALL_TIMEOUT_S
                )
            except (ActorGone, CallTimeout):
                return None
            return got

        answers = await asyncio.gather(*(one(p) for p in placed))
        return {
            p.replica_id: ReplicaResources(**a)
            for p, a in zip(placed, answers, strict=True)
            if a is not None
        }

    # ------------------------------------------------------------------ close

    async def close(self, *, stop_replicas: bool = True) -> None:
        """Stop every replica (SIGTERM, then the actors are killed after the stop timeout)
        and leave the cluster; with `stop_replicas=False` the actors keep running for a
        later server's `adopt`."""
        with self._lock:
            self._closing = True
            placed = list(self._placed.values())
            self._placed.clear()
        if stop_replicas and placed:
            await asyncio.gather(*(self._stop_and_kill(p) for p in placed))
        try:
            await self._calls.shutdown()
        except Unavailable as e:
            log.warning("leaving the Ray cluster: %s", e)

    async def _stop_and_kill(self, p: _Placed) -> None:
        deadline = time.monotonic() + self._settings.control.stop_timeout_s
        try:
            await self._calls.call(p.handle, "terminate", timeout=CALL_TIMEOUT_S)
            while time.monotonic() < deadline:
                state = await self._calls.call(p.handle, "state", timeout=CALL_TIMEOUT_S)
                if not state.get("alive"):
                    break
                await asyncio.sleep(0.1)
        except (ActorGone, CallTimeout):
            pass
        await self._kill_now(p.handle)


class _ActorFollower:
    """Follows one replica's log by asking its actor for the lines after an offset."""

    def __init__(self, calls: RayApi, handle: Any, offset: int) -> None:
        self._calls, self._handle, self._offset = calls, handle, offset

    def read_new(self) -> list[str]:
        try:
            lines, self._offset = self._calls.call_blocking(
                self._handle, "read_from", self._offset, timeout=CALL_TIMEOUT_S
            )
        except (ActorGone, CallTimeout, Unavailable):
            return []
        return list(lines)


class _NoMoreLines:
    def read_new(self) -> list[str]:
        return []


if TYPE_CHECKING:

    def _conforms(settings: Settings) -> Backend:
        return RayBackend(settings, FetchAccess("http://127.0.0.1:8000"))
