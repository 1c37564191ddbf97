"""The controller's effects on replicas: start, drain, stop and kill them, and take note of
their starts and readiness.

What an exit means for the endpoint (restart, backoff, failure) is `control.exits`; taking
over the replicas of a previous server is `control.adoption`. Every effect that a user
would want to know about is recorded as an event (`control.journal`).
"""

from __future__ import annotations

import logging

from podium.backends.base import (
    Backend,
    HasRoom,
    KeepsLogs,
    ModelSource,
    ObservedReplica,
    Prewarms,
    ReplicaLaunch,
    ReplicaSize,
    ReportsStartup,
)
from podium.control.exits import Exits
from podium.control.journal import Journal
from podium.control.preparing import Preparing
from podium.control.secret_refs import RevisionSecrets, resolve
from podium.control.starts import Batch, BatchResult
from podium.control.state import ControllerState
from podium.control.tracked import EndpointMemory, TrackedReplica
from podium.core.clock import Clock
from podium.core.env_spec import env_values
from podium.core.errors import LoadError, NoRoom, PodiumError
from podium.core.ids import new_replica_id
from podium.core.phases import EndpointStatus, EventKind, ExitReason, ReplicaState
from podium.core.resources_spec import gpu_count
from podium.core.settings import CUSTOM, Settings
from podium.core.spec import RepoRef, S3Ref, model_version, parse_model_ref
from podium.store.db import Database
from podium.store.records import EndpointRecord, RevisionRecord
from podium.store.secret_box import SecretBox
from podium.store.usage import RowSize

log = logging.getLogger("podium.control")

_COLD = (EndpointStatus.PAUSED, EndpointStatus.FAILED, EndpointStatus.DELETING)
_LEAVING = (ReplicaState.DRAINING, ReplicaState.STOPPING)
PREWARM_EVERY_S = 0.5  # a framework's prewarm is asked at most this often (one pass's span)


def _age(r: TrackedReplica) -> float:
    """Oldest first (the plan drains the oldest of an old revision first too)."""
    return r.started_mono


class Actuator:
    """Applies the plan to replicas. Holds its collaborators, not the controller: the
    store (for models), the backend, the clock, the settings, the shared state, the
    journal, the exit accounting and the models being prepared."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        backend: Backend,
        clock: Clock,
        state: ControllerState,
        journal: Journal,
        exits: Exits,
        preparing: Preparing,
    ) -> None:
        self.settings = settings
        self.db = db
        self.backend = backend
        self.clock = clock
        self.state = state
        self.journal = journal
        self.exits = exits
        self.preparing = preparing
        self.box = SecretBox(settings.secret_key_path)
        self._prewarmed: dict[str, float] = {}  # framework → when last asked (monotonic)
        # Checked once: an isinstance against a runtime-checkable Protocol inspects the
        # class's members each time (a tenth of an idle pass at 1,000 endpoints).
        self._prewarms = backend if isinstance(backend, Prewarms) else None

    async def observe(self, ep: EndpointRecord) -> None:
        """Start of a pass for this endpoint: the store's record is the truth."""
        self.state.saw(ep)
        backend = self._prewarms
        if backend is not None and ep.status not in _COLD:
            # e.g. a zygote, so wakes from zero fork. Asked once per framework and pass
            # (PREWARM_EVERY_S), not once per endpoint: 1,000 endpoints of one framework
            # made 1,000 zygote checks a second.
            framework, now = ep.spec.framework, self.clock.monotonic()
            if now - self._prewarmed.get(framework, -PREWARM_EVERY_S) >= PREWARM_EVERY_S:
                self._prewarmed[framework] = now
                await backend.prewarm(framework)

    async def delete_endpoint(self, name: str) -> None:
        with self.db.unit_of_work() as uow:
            uow.endpoints.delete(name)
        if isinstance(self.backend, KeepsLogs):
            await self.backend.forget_endpoint(name)
        self.state.forget_endpoint(name)
        log.info("%s: deleted", name)

    # ------------------------------------------------------------------ start

    def _model(self, ref_text: str, secrets: RevisionSecrets | None = None) -> ModelSource:
        """What the backend needs to find the revision's model on a node: the reference and
        its digest (the store's sha256 and folder for a repository model; the revision
        asked for an `hf://` one, and the endpoint's own Hub token, if it names one; the
        pinned listing digest of an `s3://` one, and the endpoint's own S3 keys, if it
        names them). Never a path of this machine's choosing."""
        ref = parse_model_ref(ref_text)
        if isinstance(ref, RepoRef):
            with self.db.unit_of_work(read_only=True) as uow:
                rec = uow.models.get(ref.name, ref.version)
            return ModelSource(ref=ref_text, digest=rec.sha256, location=rec.path)
        secrets = secrets or RevisionSecrets()
        if isinstance(ref, S3Ref):
            return ModelSource(ref=str(ref), digest=ref.digest, s3_keys=secrets.s3_keys)
        return ModelSource(ref=str(ref), digest=ref.revision, token=secrets.hf_token)

    async def start(self, ep: EndpointRecord, mem: EndpointMemory, n: int) -> None:
        """Launch `n` starts of the endpoint's target revision (`control.starts`) once the
        backend has its model ready: the pass waits for neither (a later pass asks again).
        A backend that counts devices (`HasRoom`: the local backend's GPUs) is asked first:
        only the replicas that fit are started, the others wait, pending, for a later pass
        (`waiting`), never started just to be refused."""
        self.state.seen[ep.name] = ep
        decided = self.clock.now().timestamp()
        try:
            rev = self.journal.revision(ep.name, ep.revision)
            secrets = resolve(self.db, self.box, self.journal.secrets, ep.name, rev.spec)
            model = self._model(rev.model_ref, secrets)
            if not await self.preparing.ready((ep.name, rev.number), model):
                return  # fetching
        except PodiumError as e:
            self.exits.fail(ep.name, mem, f"revision {ep.revision} cannot start: {e}")
            return
        n = self._fitting(ep.name, mem, rev, n)
        if n == 0:
            return
        backend = self.backend

        async def work(batch: Batch) -> BatchResult:  # a task on the controller's loop
            out = BatchResult()
            try:
                for rid in batch.replica_ids:
                    if rid not in batch.cancelled:
                        launch = self._launch(rid, rev, model, secrets)
                        out.started.append(await backend.start(launch))
            except Exception as e:  # judged by the pass that collects it
                out.error = e
            return out

        ids = [str(new_replica_id(ep.name, rev.number)) for _ in range(n)]
        now = self.clock.monotonic()
        self.state.starts.launch(ep.name, rev.number, ids, decided=decided, since=now, work=work)

    def _fitting(self, name: str, mem: EndpointMemory, rev: RevisionRecord, n: int) -> int:
        """How many of `n` replicas the backend has room for now (all, for a backend that
        does not count); the rest wait (`waiting`), and `mem.unplaced` says how many."""
        backend = self.backend
        if not isinstance(backend, HasRoom):
            return n
        it = self.settings.replica_size(rev.spec)
        room = backend.room_for(ReplicaSize(cpus=it.cpus, memory_mb=it.memory_mb, gpus=it.gpus))
        if room is None or room >= n:
            mem.unplaced = 0  # all fit: still `waiting_for` until started (`collect_starts`)
            return n
        free = "none is" if room == 0 else f"only {room} can be"
        self.waiting(
            name,
            mem,
            f"waiting for GPUs: {n - room} replica{'s' if n - room != 1 else ''} of revision "
            f"{rev.number} need{'s' if n - room == 1 else ''} {gpu_count(it.gpus)} each; "
            f"{free} placed now",
        )
        mem.unplaced = n - room
        return room

    def waiting(self, name: str, mem: EndpointMemory, reason: str) -> None:
        """Some of the endpoint's replicas cannot be placed now: say so once (an event, and
        the status reason while it lasts). They stay pending: the plan asks for them again
        each pass and they start once room frees up (a replica of another endpoint exits,
        or an old revision's replica drained for them: `making_room`). Not a crash, not a
        failure."""
        if mem.waiting_for is None:
            self.journal.event(name, EventKind.REPLICA_WAITING, reason)
        mem.waiting_for = reason

    def making_room(self, ep: EndpointRecord, mem: EndpointMemory) -> tuple[str, ...]:
        """Ready replicas of the endpoint's older revisions to drain now so that one of its
        target replicas that waits for room (`mem.unplaced`, from the last `_fitting`) fits:
        a rollout on a full node, where surge cannot happen. The fewest, oldest first, and
        only when it works: the backend is asked how many would fit were those replicas
        (and the old ones already leaving) gone, so an old replica is never drained for a
        new one that still would not fit (room another endpoint holds, a bigger size). Not
        while a target replica is starting: the next old one is drained once it is ready,
        so the endpoint is short of at most one replica at a time, as a rolling update with
        one unavailable. () when nothing should be drained for room."""
        backend = self.backend
        if mem.unplaced == 0 or mem.waiting_for is None or not isinstance(backend, HasRoom):
            return ()
        mine = self.state.of(ep.name)
        target = [r for r in mine if r.revision == ep.revision]
        if self.state.starts.pending(ep.name) or any(
            r.state is ReplicaState.STARTING for r in target
        ):
            return ()
        spec = self.journal.revision_spec(ep.name, ep.revision)
        if spec is None:
            return ()
        it = self.settings.replica_size(spec)
        size = ReplicaSize(cpus=it.cpus, memory_mb=it.memory_mb, gpus=it.gpus)
        old = [r for r in mine if r.revision != ep.revision]
        gone = [r.replica_id for r in old if r.state in _LEAVING]
        if (backend.room_for(size, gone) or 0) > 0:
            return ()  # the ones already leaving make room once they have ended
        ready = sorted((r for r in old if r.state is ReplicaState.READY), key=_age)
        for count, r in enumerate(ready, start=1):
            gone.append(r.replica_id)
            if (backend.room_for(size, gone) or 0) > 0:
                return tuple(x.replica_id for x in ready[:count])
        return ()  # even all of them would not make room: they keep serving

    def _launch(
        self, replica_id: str, rev: RevisionRecord, model: ModelSource, secrets: RevisionSecrets
    ) -> ReplicaLaunch:
        spec = rev.spec
        return ReplicaLaunch(
            replica_id=replica_id,
            endpoint=rev.endpoint,
            revision=rev.number,
            runtime=spec.framework,
            model=model,
            instance_type=self.settings.replica_size(spec),
            task=spec.task,
            env={**env_values(spec.env), **secrets.env},
            max_concurrency=spec.max_concurrency,
            max_queue=spec.max_queue,
            trust_pickle=spec.trust_pickle,
            batching=spec.batching,
            command=spec.command,
            engine_args=dict(spec.engine_args),
            model_version=model_version(rev.model_ref),
            container=spec.container,
            registry_credentials=secrets.registry,
        )

    def collect_starts(self) -> None:
        """Track the replicas of the start batches that have ended; a batch that ended
        early fails the endpoint (a load error: e.g. the model is not on the node, or not
        what its digest says) or counts as a crash at start (anything else), as a start in
        the pass did."""
        for batch, res in self.state.starts.done():
            name = batch.endpoint
            mem = self.state.memory.get(name) or EndpointMemory()  # deleted meanwhile
            for obs in res.started:  # one the plan cancelled meanwhile: it stops it
                self._started(obs, mem, batch.decided)
            e = res.error
            if res.started and e is None and mem.unplaced == 0:
                mem.waiting_for = None  # every replica placed: no longer waiting for room
            if e is None:
                continue
            # A load error (deterministic: vllm not installed, a model that does not
            # resolve on the node): no restarts.
            if isinstance(e, NoRoom):  # another start took the room meanwhile: wait
                # Not `unplaced`: the next pass asks the backend (`_fitting`) before any
                # old replica is drained for room (`making_room`).
                self.waiting(name, mem, str(e))
            elif isinstance(e, LoadError):
                self.exits.fail(name, mem, f"revision {batch.revision} cannot start: {e}")
            else:
                log.error("%s: backend failed to start a replica", name, exc_info=e)
                self.exits.crashed(name, batch.revision, mem, f"could not start: {e}")

    def _started(self, obs: ObservedReplica, mem: EndpointMemory, decided: float) -> TrackedReplica:
        restarted = mem.pending_restarts > 0
        if restarted:
            mem.pending_restarts -= 1
            mem.restarts += 1
        r = self.state.track(
            obs, restarts=mem.restarts if restarted else 0, now=self.clock.monotonic()
        )
        self.state.decided[r.replica_id] = decided
        self.journal.started(r, *self._usage_size(obs.endpoint, obs.revision))
        kind = EventKind.REPLICA_RESTARTED if restarted else EventKind.REPLICA_STARTING
        verb = "restarted as" if restarted else "starting"
        mode = f", {obs.start_mode}" if obs.start_mode else ""
        self.journal.event(
            obs.endpoint,
            kind,
            f"replica {r.replica_id} {verb} "
            f"(revision {obs.revision}, pid {obs.pid}, port {obs.port}{mode})",
            replica_id=r.replica_id,
            revision=obs.revision,
            pid=obs.pid,
            port=obs.port,
            start_mode=obs.start_mode,
        )
        return r

    def _usage_size(self, endpoint: str, revision: int) -> tuple[str, RowSize | None]:
        """What the usage row records: the instance type's name, and for `resources` (the
        type `custom`) the size, which the usage report prices per unit."""
        spec = self.journal.revision_spec(endpoint, revision)
        if spec is None:
            return ("unknown", None)
        r = spec.resources
        if r is not None:
            return (CUSTOM, RowSize(r.cpus, r.memory, r.gpus))
        return (spec.instance_type, None)

    # ------------------------------------------------------------------ state changes

    def became_ready(self, r: TrackedReplica, how: str = "") -> None:
        """`how`: a note for the event (e.g. readiness probes are off)."""
        now = self.clock.monotonic()
        r.state, r.ready_at, r.was_ready = ReplicaState.READY, now, True
        r.readiness_failures = r.liveness_failures = 0
        r.readiness_successes = r.liveness_successes = 0
        self.journal.save(r)
        took = now - r.starting_since
        mode, phases = self._start_phases(r.replica_id)
        detail = ", ".join(f"{k.replace('_', ' ')} {v:.3f}s" for k, v in phases.items())
        self.journal.event(
            r.endpoint,
            EventKind.REPLICA_READY,
            f"replica {r.replica_id} ready after {took:.2f}s"
            + (f" ({mode}: {detail})" if phases else "")
            + (f" ({how})" if how else ""),
            replica_id=r.replica_id,
            revision=r.revision,
            ready_s=round(took, 3),
            start_mode=mode,
            phases=phases,
        )

    def _start_phases(self, replica_id: str) -> tuple[str | None, dict[str, float]]:
        """(start mode, seconds per phase) of a replica's first start, once: waiting
        (decided -> process asked for), fork|spawn, import, load, listen, first response
        (listening -> the first readiness answer this controller got)."""
        decided = self.state.decided.pop(replica_id, None)
        backend = self.backend
        if decided is None or not isinstance(backend, ReportsStartup):
            return None, {}
        report = backend.startup(replica_id)
        if report is None:
            return None, {}
        phases = {"waiting": round(max(0.0, report.launched_at - decided), 4), **report.phases}
        if report.listening_at is not None:
            answered = self.clock.now().timestamp() - report.listening_at
            phases["first_response"] = round(max(0.0, answered), 4)
        return report.start_mode, phases

    def not_ready(self, r: TrackedReplica, detail: str) -> None:
        r.state, r.ready_at = ReplicaState.STARTING, None
        r.starting_since = self.clock.monotonic()
        self.journal.save(r)
        self.journal.event(
            r.endpoint,
            EventKind.REPLICA_UNHEALTHY,
            f"replica {r.replica_id} taken out of routing: {detail}",
            replica_id=r.replica_id,
        )

    def drain(self, r: TrackedReplica) -> None:
        if r.state is not ReplicaState.READY:
            return
        r.state, r.drain_since = ReplicaState.DRAINING, self.clock.monotonic()
        r.unrouted_at = None  # set once a table without it is stored (`publishing`)
        self.journal.save(r)

    async def stop(self, r: TrackedReplica, why: str) -> None:
        if r.state is ReplicaState.STOPPING:
            return
        log.info("%s: stopping %s (%s)", r.endpoint, r.replica_id, why)
        r.state = ReplicaState.STOPPING
        self.journal.save(r)
        await self.backend.stop(r.replica_id)

    async def hung(self, r: TrackedReplica, detail: str, figures: dict[str, float]) -> None:
        """Kill a hung replica; it counts as a crash while serving (`exits.Exits.hung`).
        It leaves routing with this pass's table."""
        self.exits.hung(r, detail, figures)
        await self.kill(r, ExitReason.HUNG, detail)

    async def kill(self, r: TrackedReplica, reason: ExitReason, detail: str) -> None:
        r.kill_detail = detail
        r.state = ReplicaState.STOPPING
        self.journal.save(r)
        await self.backend.kill(r.replica_id, reason)

    async def replica_exited(self, obs: ObservedReplica) -> None:
        """A replica's process ended: its event, a restart or the endpoint's failure."""
        await self.exits.replica_exited(obs)
