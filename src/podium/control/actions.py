"""The controller's effects: start, drain, stop and kill replicas, write status.

What an exit means for the endpoint (restart, backoff, failure) is `control.exits`.

Every effect that a user would want to know about is recorded as an event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from podium.artifacts.sources import NodeCache
from podium.backends.base import (
    AdoptCandidate,
    KeepsLogs,
    ObservedReplica,
    Prewarms,
    ReplicaLaunch,
    ReportsStartup,
)
from podium.control.downloads import Downloads
from podium.control.exits import Exits
from podium.control.starts import Batch, BatchResult, Starts
from podium.control.tracked import EndpointMemory, TrackedReplica
from podium.core.errors import Conflict, LoadError, PodiumError
from podium.core.ids import new_replica_id
from podium.core.phases import EndpointStatus, EventKind, ExitReason, ReplicaState
from podium.core.spec import EndpointSpec, HfRef, RepoRef, model_version, parse_model_ref
from podium.store.records import EndpointRecord, ReplicaRecord, RevisionRecord

if TYPE_CHECKING:
    from podium.control.loop import Controller

log = logging.getLogger("podium.control")

_COLD = (EndpointStatus.PAUSED, EndpointStatus.FAILED, EndpointStatus.DELETING)


class Actuator:
    def __init__(self, ctl: Controller, node_cache: NodeCache) -> None:
        self.ctl = ctl
        self.node_cache = node_cache
        self.seen: dict[str, EndpointRecord] = {}  # last record read per endpoint
        self._status: dict[str, tuple[EndpointStatus, str | None]] = {}
        self._revisions: dict[tuple[str, int], RevisionRecord] = {}
        self._starts: dict[str, float] = {}  # replica -> wall time its start was decided
        self.downloads = Downloads(node_cache, ctl.settings.download, self.event)
        self.exits = Exits(self)
        self.starts = Starts(ctl.wake)

    # ------------------------------------------------------------------ events and status

    def event(self, endpoint: str, kind: EventKind, message: str, **data: object) -> None:
        log.info("%s: %s", endpoint, message)
        with self.ctl.db.unit_of_work() as uow:
            uow.events.add(endpoint, kind, message, dict(data))

    def observe(self, ep: EndpointRecord) -> None:
        """Start of a pass for this endpoint: the store's record is the truth."""
        self.seen[ep.name] = ep
        self._status[ep.name] = (ep.status, ep.status_reason)
        backend = self.ctl.backend
        if isinstance(backend, Prewarms) and ep.status not in _COLD:
            backend.prewarm(ep.spec.framework)  # e.g. a zygote, so wakes from zero fork

    def current_status(self, ep: EndpointRecord) -> EndpointStatus:
        return self._status.get(ep.name, (ep.status, ep.status_reason))[0]

    def set_status(self, ep: EndpointRecord, status: EndpointStatus, reason: str | None) -> None:
        old = self._status.get(ep.name, (ep.status, ep.status_reason))
        if old == (status, reason):
            return
        try:
            with self.ctl.db.unit_of_work() as uow:
                changed = uow.endpoints.set_status(ep.name, status, reason)
                if changed and old[0] is not status:
                    text = f"status {old[0].value} → {status.value}" + (
                        f": {reason}" if reason else ""
                    )
                    uow.events.add(
                        ep.name,
                        EventKind.STATUS,
                        text,
                        {"from": old[0].value, "to": status.value, "reason": reason},
                    )
        except Conflict as e:
            log.warning("%s: %s", ep.name, e)
            return
        except PodiumError as e:  # e.g. deleted by the API meanwhile
            log.info("%s: status not written: %s", ep.name, e)
            return
        self._status[ep.name] = (status, reason)

    def delete_endpoint(self, name: str) -> None:
        with self.ctl.db.unit_of_work() as uow:
            uow.endpoints.delete(name)
        if isinstance(self.ctl.backend, KeepsLogs):
            self.ctl.backend.forget_endpoint(name)
        self._status.pop(name, None)
        self.seen.pop(name, None)
        # A new endpoint of the same name numbers its revisions from 1 again.
        self._revisions = {k: v for k, v in self._revisions.items() if k[0] != name}
        log.info("%s: deleted", name)

    def fail(self, name: str, mem: EndpointMemory, reason: str) -> None:
        ep = self.seen.get(name)
        mem.failure = reason
        mem.failure_generation = ep.generation if ep else None
        self.ctl.wake(name)

    # ------------------------------------------------------------------ start

    def revision(self, ep: EndpointRecord) -> RevisionRecord:
        key = (ep.name, ep.revision)
        if key not in self._revisions:
            with self.ctl.db.unit_of_work(read_only=True) as uow:
                self._revisions[key] = uow.endpoints.revision(ep.name, ep.revision)
        return self._revisions[key]

    def revision_spec(self, endpoint: str, number: int) -> EndpointSpec | None:
        """The spec revision `number` froze (cached: revisions never change); None if gone."""
        key = (endpoint, number)
        if key not in self._revisions:
            try:
                with self.ctl.db.unit_of_work(read_only=True) as uow:
                    self._revisions[key] = uow.endpoints.revision(endpoint, number)
            except PodiumError:
                return None
        return self._revisions[key].spec

    def _model_path(
        self, ep: EndpointRecord, rev: RevisionRecord, ref: RepoRef | HfRef
    ) -> Path | None:
        """The revision's model folder on this node; None while it is being downloaded
        (the controller never waits for a download: a later pass looks again)."""
        if isinstance(ref, RepoRef):
            with self.ctl.db.unit_of_work(read_only=True) as uow:
                return Path(uow.models.get(ref.name, ref.version).path)
        return self.downloads.path((ep.name, rev.number), ref)

    def start(self, ep: EndpointRecord, mem: EndpointMemory, n: int) -> None:
        """Launch `n` starts of the endpoint's target revision (`control.starts`): the
        pass does not wait for them. Nothing is launched while its model downloads."""
        self.seen[ep.name] = ep
        decided = self.ctl.clock.now().timestamp()
        resolve: Callable[[], Path] | None = None
        try:
            rev = self.revision(ep)
            path = mem.model_paths.get(rev.number)
            if path is None:
                ref = parse_model_ref(rev.model_ref)
                if isinstance(ref, HfRef) and self.node_cache.hf_offline:
                    # The cache only (no network): resolved in the start's thread.
                    resolve = partial(self._cached, ref)
                else:
                    path = self._model_path(ep, rev, ref)
                    if path is None:
                        return  # downloading
                    mem.model_paths[rev.number] = path
        except PodiumError as e:
            self.fail(ep.name, mem, f"revision {ep.revision} cannot start: {e}")
            return
        backend = self.ctl.backend

        def work(batch: Batch) -> BatchResult:  # in a start thread
            out = BatchResult(path=path)
            try:
                if out.path is None and resolve is not None:
                    out.path = resolve()
                for rid in batch.replica_ids:
                    if rid not in batch.cancelled:
                        out.started.append(backend.start(self._launch(rid, rev, out.path)))
            except Exception as e:  # judged by the pass that collects it
                out.error = e
            return out

        ids = [str(new_replica_id(ep.name, rev.number)) for _ in range(n)]
        now = self.ctl.clock.monotonic()
        self.starts.launch(ep.name, rev.number, ids, decided=decided, since=now, work=work)

    def _cached(self, ref: HfRef) -> Path:
        return self.node_cache.resolve_hf(ref).path

    def _launch(self, replica_id: str, rev: RevisionRecord, path: Path | None) -> ReplicaLaunch:
        assert path is not None
        spec = rev.spec
        return ReplicaLaunch(
            replica_id=replica_id,
            endpoint=rev.endpoint,
            revision=rev.number,
            runtime=spec.framework,
            model_path=path,
            instance_type=self.ctl.settings.instance_type(spec.instance_type),
            task=spec.task,
            env=dict(spec.env),
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
        early fails the endpoint (a load error, a model that does not resolve) or counts
        as a crash at start (anything else), as a start in the pass did."""
        for batch, res in self.starts.done():
            name = batch.endpoint
            mem = self.ctl.memory.get(name) or EndpointMemory()  # deleted meanwhile
            if res.path is not None:
                mem.model_paths.setdefault(batch.revision, res.path)
            for obs in res.started:  # one the plan cancelled meanwhile: it stops it
                self._started(obs, mem, batch.decided)
            e = res.error
            if e is None:
                continue
            # A model that does not resolve, or a load error (deterministic, e.g. vllm
            # not installed): no restarts.
            if isinstance(e, LoadError) or (res.path is None and isinstance(e, PodiumError)):
                self.fail(name, mem, f"revision {batch.revision} cannot start: {e}")
            else:
                log.error("%s: backend failed to start a replica", name, exc_info=e)
                self.exits.crashed(name, batch.revision, mem, f"could not start: {e}")

    def _started(self, obs: ObservedReplica, mem: EndpointMemory, decided: float) -> TrackedReplica:
        restarted = mem.pending_restarts > 0
        if restarted:
            mem.pending_restarts -= 1
            mem.restarts += 1
        r = self._track(obs, restarts=mem.restarts if restarted else 0)
        self._starts[r.replica_id] = decided
        self._save(r)
        kind = EventKind.REPLICA_RESTARTED if restarted else EventKind.REPLICA_STARTING
        verb = "restarted as" if restarted else "starting"
        mode = f", {obs.start_mode}" if obs.start_mode else ""
        self.event(
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

    # ------------------------------------------------------------------ state changes

    def became_ready(self, r: TrackedReplica) -> None:
        now = self.ctl.clock.monotonic()
        r.state, r.ready_at, r.was_ready = ReplicaState.READY, now, True
        r.readiness_failures = r.liveness_failures = 0
        self._save(r)
        took = now - r.starting_since
        mode, phases = self._start_phases(r.replica_id)
        detail = ", ".join(f"{k.replace('_', ' ')} {v:.3f}s" for k, v in phases.items())
        self.event(
            r.endpoint,
            EventKind.REPLICA_READY,
            f"replica {r.replica_id} ready after {took:.2f}s"
            + (f" ({mode}: {detail})" if phases else ""),
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
        decided = self._starts.pop(replica_id, None)
        backend = self.ctl.backend
        if decided is None or not isinstance(backend, ReportsStartup):
            return None, {}
        report = backend.startup(replica_id)
        if report is None:
            return None, {}
        phases = {"waiting": round(max(0.0, report.launched_at - decided), 4), **report.phases}
        if report.listening_at is not None:
            answered = self.ctl.clock.now().timestamp() - report.listening_at
            phases["first_response"] = round(max(0.0, answered), 4)
        return report.start_mode, phases

    def not_ready(self, r: TrackedReplica, detail: str) -> None:
        r.state, r.ready_at = ReplicaState.STARTING, None
        r.starting_since = self.ctl.clock.monotonic()
        self._save(r)
        self.event(
            r.endpoint,
            EventKind.REPLICA_UNHEALTHY,
            f"replica {r.replica_id} taken out of routing: {detail}",
            replica_id=r.replica_id,
        )

    def drain(self, r: TrackedReplica) -> None:
        if r.state is not ReplicaState.READY:
            return
        r.state, r.drain_since = ReplicaState.DRAINING, self.ctl.clock.monotonic()
        self._save(r)

    def stop(self, r: TrackedReplica, why: str) -> None:
        if r.state is ReplicaState.STOPPING:
            return
        log.info("%s: stopping %s (%s)", r.endpoint, r.replica_id, why)
        r.state = ReplicaState.STOPPING
        self._save(r)
        self.ctl.backend.stop(r.replica_id)

    def hung(self, r: TrackedReplica, detail: str, figures: dict[str, float]) -> None:
        """Kill a hung replica; it counts as a crash while serving (`exits.Exits.hung`)."""
        self.exits.hung(r, detail, figures)

    def kill(self, r: TrackedReplica, reason: ExitReason, detail: str) -> None:
        r.kill_detail = detail
        r.state = ReplicaState.STOPPING
        self._save(r)
        self.ctl.backend.kill(r.replica_id, reason)

    # ------------------------------------------------------------------ exits

    def replica_exited(self, obs: ObservedReplica) -> None:
        """A replica's process ended: its event, a restart or the endpoint's failure."""
        self._starts.pop(obs.replica_id, None)
        self.exits.replica_exited(obs)

    # ------------------------------------------------------------------ adoption

    def adopt_all(self) -> None:
        """After a server start: take over the replicas the store lists that still run;
        the others are recorded as lost."""
        with self.ctl.db.unit_of_work(read_only=True) as uow:
            rows = uow.replicas.list()
        if not rows:
            return
        candidates = [
            AdoptCandidate(
                replica_id=r.replica_id,
                endpoint=r.endpoint,
                revision=r.revision,
                host=r.host,
                port=r.port,
                pid=r.pid,
                started_at=r.started_at,
                log_location=r.log_path or None,
            )
            for r in rows
        ]
        adopted = {o.replica_id: o for o in self.ctl.backend.adopt(candidates)}
        for row in rows:
            found: ObservedReplica | None = adopted.get(row.replica_id)
            if found is None:
                self.forget_lost(row)
                continue
            self.track_adopted(found, restarts=row.restarts)
        log.info("adopted %d of %d replicas", len(adopted), len(rows))

    def track_adopted(self, obs: ObservedReplica, *, restarts: int) -> None:
        r = self._track(obs, restarts=restarts)
        self._save(r)
        self.event(
            r.endpoint,
            EventKind.REPLICA_ADOPTED,
            f"replica {r.replica_id} adopted after a server restart (pid {obs.pid})",
            replica_id=r.replica_id,
            pid=obs.pid,
        )

    def forget_lost(self, row: ReplicaRecord) -> None:
        with self.ctl.db.unit_of_work() as uow:
            uow.replicas.delete(row.replica_id)
        self.event(
            row.endpoint,
            EventKind.REPLICA_CRASHED,
            f"replica {row.replica_id} was not running after the server restarted",
            replica_id=row.replica_id,
            reason=ExitReason.LOST.value,
            log_tail=self.exits.log_tail(row.replica_id),
        )

    def _track(self, obs: ObservedReplica, *, restarts: int) -> TrackedReplica:
        """Start watching a replica the backend has just started or adopted (as starting)."""
        now = self.ctl.clock.monotonic()
        r = TrackedReplica(
            replica_id=obs.replica_id,
            endpoint=obs.endpoint,
            revision=obs.revision,
            host=obs.host,
            port=obs.port,
            pid=obs.pid,
            started_mono=now,
            started_at=obs.started_at,
            log_location=obs.log_location,
            restarts=restarts,
            starting_since=now,
        )
        self.ctl.replicas[r.replica_id] = r
        return r

    def _save(self, r: TrackedReplica) -> None:
        with self.ctl.db.unit_of_work() as uow:
            uow.replicas.upsert(r.record())
