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
    KeepsLogs,
    ModelSource,
    ObservedReplica,
    Prewarms,
    ReplicaLaunch,
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
from podium.core.errors import LoadError, PodiumError
from podium.core.ids import new_replica_id
from podium.core.phases import EndpointStatus, EventKind, ExitReason, ReplicaState
from podium.core.settings import CUSTOM, Settings
from podium.core.spec import RepoRef, model_version, parse_model_ref
from podium.store.db import Database
from podium.store.records import EndpointRecord, RevisionRecord
from podium.store.secret_box import SecretBox
from podium.store.usage import RowSize

log = logging.getLogger("podium.control")

_COLD = (EndpointStatus.PAUSED, EndpointStatus.FAILED, EndpointStatus.DELETING)


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

    async def observe(self, ep: EndpointRecord) -> None:
        """Start of a pass for this endpoint: the store's record is the truth."""
        self.state.seen[ep.name] = ep
        self.state.status[ep.name] = (ep.status, ep.status_reason)
        backend = self.backend
        if isinstance(backend, Prewarms) and ep.status not in _COLD:
            await backend.prewarm(ep.spec.framework)  # e.g. a zygote: wakes from zero fork

    async def delete_endpoint(self, name: str) -> None:
        with self.db.unit_of_work() as uow:
            uow.endpoints.delete(name)
        if isinstance(self.backend, KeepsLogs):
            await self.backend.forget_endpoint(name)
        self.state.forget_endpoint(name)
        log.info("%s: deleted", name)

    # ------------------------------------------------------------------ start

    def _model(self, ref_text: str, hf_token: str | None = None) -> ModelSource:
        """What the backend needs to find the revision's model on a node: the reference and
        its digest (the store's sha256 and folder for a repository model; the revision
        asked for an `hf://` one, and the endpoint's own Hub token, if it names one). Never
        a path of this machine's choosing."""
        ref = parse_model_ref(ref_text)
        if isinstance(ref, RepoRef):
            with self.db.unit_of_work(read_only=True) as uow:
                rec = uow.models.get(ref.name, ref.version)
            return ModelSource(ref=ref_text, digest=rec.sha256, location=rec.path)
        return ModelSource(ref=str(ref), digest=ref.revision, token=hf_token)

    async def start(self, ep: EndpointRecord, mem: EndpointMemory, n: int) -> None:
        """Launch `n` starts of the endpoint's target revision (`control.starts`) once the
        backend has its model ready: the pass waits for neither (a later pass asks again)."""
        self.state.seen[ep.name] = ep
        decided = self.clock.now().timestamp()
        try:
            rev = self.journal.revision(ep.name, ep.revision)
            secrets = resolve(self.db, self.box, self.journal.secrets, ep.name, rev.spec)
            model = self._model(rev.model_ref, secrets.hf_token)
            if not await self.preparing.ready((ep.name, rev.number), model):
                return  # fetching
        except PodiumError as e:
            self.exits.fail(ep.name, mem, f"revision {ep.revision} cannot start: {e}")
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
            if e is None:
                continue
            # A load error (deterministic: vllm not installed, a model that does not
            # resolve on the node): no restarts.
            if isinstance(e, LoadError):
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
