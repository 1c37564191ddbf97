"""The autoscaler's glue: sample load, ask the policy, write the desired count.

Each controller pass, for every endpoint that is not paused, deleting or failed, this reads
the gateway's `load_snapshot()` (in flight, held, request counter), scrapes the replicas'
`/metrics` for endpoints with `rules`, appends a `Sample` to the endpoint's bounded history
(`load_history`: one stable window, and a series of its own for a longer rule window) and
calls the pure policy (`scale_policy.decide`). A changed count is written with
`set_desired` and a `scaled` event carrying the reason and the figures, in one unit of work.
A scale change never makes a revision and never restarts a running replica: the reconciler
only starts or drains the difference.

A scale-up never passes the project's quotas (`quota_cap`): the quotas of the projects that
have any are read once per pass, the usage is counted from the pass's records (and follows
the counts the pass writes), and a scale-up is checked again under the project's lock when
it is written. A capped one says so in its `scaled` event; one that cannot grow at all
writes an event only (once, until the cap changes).

The task queue (issue 13) is one more input: the loop's store read of a pass calls
`read_queue(uow)`, which reads `TaskRepo.depth()` (pending, oldest, running per endpoint)
at most once every `QUEUE_READ_S` and keeps the figures for the passes between; each sample
carries the endpoint's figures, and the policy counts them as demand (`scale_policy`).
Tasks wake no one: an endpoint at zero with queued tasks comes up at the next pass that
reads the queue, within a tick (the gateway's wake path stays the one for held requests).

Without a gateway (unit tests of the loop) there is no load to read and nothing is scaled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import httpx

from podium.control.load_history import LoadHistory
from podium.control.metrics import ControllerMetrics
from podium.control.quota_cap import cap
from podium.control.rule_figures import Scraper, Target
from podium.control.scale_policy import (
    Decision,
    ScalerState,
    ScalingContext,
    decide,
)
from podium.control.tracked import EndpointMemory, TrackedReplica
from podium.core.clock import Clock
from podium.core.errors import PodiumError
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.quotas import Quotas, Usage, endpoint_usage, room
from podium.core.routing import EndpointLoad, GatewayView
from podium.core.scaling_spec import ScalingRule
from podium.core.settings import Settings
from podium.store.db import Database, UnitOfWork
from podium.store.records import EndpointRecord
from podium.store.task_records import QueueDepth

log = logging.getLogger("podium.control")

# Endpoints the autoscaler leaves alone: stopped by the user, going away, or broken.
IDLE_STATUSES = frozenset({EndpointStatus.PAUSED, EndpointStatus.DELETING, EndpointStatus.FAILED})
QUEUE_READ_S = 1.0  # the task queue's depth is read at most this often (a GROUP BY query)


@dataclass(slots=True)
class _Track:
    """One endpoint's recent load and what the policy remembers about it."""

    history: LoadHistory = field(default_factory=LoadHistory)
    state: ScalerState = field(default_factory=ScalerState)
    capped: tuple[int, str] | None = None  # the last "capped by quota" said: not repeated


class Autoscaling:
    """Runs the policy for every endpoint, once per controller pass."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        gateway: GatewayView | None,
        *,
        scraper: Scraper | None = None,
        memory: Mapping[str, EndpointMemory] | None = None,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        self.settings = settings
        # The controller's memory of each endpoint: the last decision is kept there (and
        # persisted by `recall`), and a new controller resumes from it.
        self.memory: Mapping[str, EndpointMemory] = {} if memory is None else memory
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.scraper = scraper or Scraper()
        self.metrics = metrics or ControllerMetrics()  # scaling decisions, by direction
        self._tracks: dict[str, _Track] = {}
        self._queue: dict[str, QueueDepth] = {}  # the task queue's depth, as last read
        self._queue_read: float | None = None  # when (monotonic)

    def read_queue(self, uow: UnitOfWork) -> None:
        """Read the task queue's depth in the pass's unit of work, unless it was read less
        than `QUEUE_READ_S` ago (then the last figures stand). Without a gateway nothing is
        scaled, so nothing is read."""
        now = self.clock.monotonic()
        if self.gateway is None or (
            self._queue_read is not None and now - self._queue_read < QUEUE_READ_S
        ):
            return
        self._queue = uow.tasks.depth()
        self._queue_read = now

    def _queue_of(self, name: str) -> tuple[int, int, float]:
        depth = self._queue.get(name)
        if depth is None:
            return (0, 0, 0.0)
        age = 0.0
        if depth.pending > 0:
            age = max(0.0, self.clock.now().timestamp() - depth.oldest_created_at)
        return (depth.pending, depth.running, age)

    def state(self, name: str) -> ScalerState | None:
        track = self._tracks.get(name)
        return None if track is None else track.state

    async def run(
        self,
        endpoints: Sequence[EndpointRecord],
        replicas: Iterable[TrackedReplica],
        http: httpx.AsyncClient | None,
        *,
        skip: Callable[[str], bool] = lambda name: False,
        only: Collection[str] | None = None,
    ) -> list[EndpointRecord]:
        """One pass: the endpoints, with the desired counts written in this pass. `only`:
        decide for these endpoints alone (the controller's wake lane); the others count
        toward their projects' quotas and are left as they are."""
        if only is None:
            names = {e.name for e in endpoints}
            for gone in [n for n in self._tracks if n not in names]:
                del self._tracks[gone]
                self.metrics.forget(gone)
        if self.gateway is None:
            return list(endpoints)
        try:
            snapshot = self.gateway.load_snapshot()
        except Exception:
            log.exception("could not read the gateway's load")
            return list(endpoints)
        by_endpoint: dict[str, list[TrackedReplica]] = {}
        for r in replicas:
            by_endpoint.setdefault(r.endpoint, []).append(r)
        active = [
            e
            for e in endpoints
            if e.status not in IDLE_STATUSES
            and not skip(e.name)
            and (only is None or e.name in only)
        ]
        scaled = {e.name for e in active}
        metrics = await self._rule_metrics(active, by_endpoint, http)
        # Quotas read once, by the first endpoint that needs them; a project's usage summed
        # only when one of its endpoints would grow under a quota.
        quotas = _Quotas(self._quotas, self._usage)
        for ep in endpoints:
            quotas.add(ep)
        now = self.clock.monotonic()
        out: list[EndpointRecord] = []
        for ep in endpoints:
            if ep.name in scaled:
                ep = self._one(ep, by_endpoint.get(ep.name, []), snapshot, metrics, now, quotas)
            out.append(ep)
        return out

    def _quotas(self) -> dict[str, Quotas]:
        """The quotas of the projects that have any: one query per pass."""
        try:
            with self.db.unit_of_work(read_only=True) as uow:
                return uow.projects.with_quotas()
        except PodiumError as e:
            log.warning("project quotas not read (no cap this pass): %s", e)
            return {}

    def _usage(self, ep: EndpointRecord) -> Usage:
        return endpoint_usage(ep.status, ep.desired_replicas, *self._per_replica(ep))

    def _per_replica(self, ep: EndpointRecord) -> tuple[float, int, int]:
        """One replica's (cpus, gpus, memory_mb)."""
        try:
            itype = self.settings.replica_size(ep.spec)
        except PodiumError:  # a type these settings do not know any more
            return (0.0, 0, 0)
        return (itype.cpus, itype.gpus, itype.memory_mb)

    def _one(
        self,
        ep: EndpointRecord,
        mine: list[TrackedReplica],
        snapshot: Mapping[str, EndpointLoad],
        metrics: Mapping[str, Mapping[str, float]],
        now: float,
        quotas: _Quotas,
    ) -> EndpointRecord:
        spec = ep.spec.scaling
        load = snapshot.get(ep.name, EndpointLoad())
        track = self._tracks.get(ep.name)
        if track is not None and self._quiet_at_zero(ep, track, mine, load):
            return ep  # what the policy would decide: stay at zero (`_quiet_at_zero`)
        track = track or self._resume(ep)
        ready = [r for r in mine if r.state is ReplicaState.READY]
        starting = sum(1 for r in mine if r.state is ReplicaState.STARTING)
        summed: dict[str, float] = {}
        for r in ready:
            for key, value in metrics.get(r.replica_id, {}).items():
                summed[key] = summed.get(key, 0.0) + value
        track.history.add(now, load, summed, spec, self._queue_of(ep.name))
        ctx = ScalingContext(
            now=now,
            spec=spec,
            desired=ep.desired_replicas,
            ready=len(ready),
            samples=tuple(track.history.samples),
            rule_samples=track.history.rule_samples(),
            starting=starting,
            # At least one: the dispatcher runs at least one task on an endpoint with a
            # ready replica, so one queued task never asks for two replicas.
            task_slots=max(1.0, self.settings.tasks.slot_share * ep.spec.max_concurrency),
        )
        decision = decide(ctx, track.state)
        using = self._usage(ep)
        limits = quotas.of(ep.project)
        capped = cap(
            decision,
            ep.desired_replicas,
            limits,
            Usage() if limits is None else quotas.used(ep.project) - using,  # no quota: unread
            *self._per_replica(ep),
        )
        if capped.held:  # cannot grow at all: say so once, change nothing
            if track.capped != capped.note:
                self._write(ep, capped.decision, count=False)
                track.capped = capped.note
            return ep
        track.capped = capped.note
        decision = capped.decision
        if not decision.changed:
            track.state = decision.state
            return ep
        limits = quotas.of(ep.project) if decision.desired > ep.desired_replicas else None
        if not self._write(ep, decision, limits=limits):
            return ep  # changed meanwhile: the next pass decides again on the new record
        new = replace(ep, desired_replicas=decision.desired)
        quotas.count(ep.project, self._usage(new) - using)
        track.state = decision.state
        mem = self.memory.get(ep.name)
        if mem is not None:
            mem.scale_desired, mem.scale_reason, mem.scaled_at = (
                decision.desired,
                decision.reason,
                now,
            )
        return replace(ep, desired_replicas=decision.desired, generation=ep.generation + 1)

    def _quiet_at_zero(
        self, ep: EndpointRecord, track: _Track, mine: list[TrackedReplica], load: EndpointLoad
    ) -> bool:
        """Whether the endpoint sits at zero with nothing that could move it: the policy
        already decided on this count of 0 (its state knows it), it has no replica, the
        gateway holds and forwards nothing for it and counted no request since the last
        sample, no task is queued or running, and no quota note is pending. Then `decide`
        can only say "stay" (rules 1 to 3 need a count above zero, a held request or a
        queued task; at zero the windows are not read), so the sample and the decision are
        skipped: with 1,000 endpoints at zero they were most of an idle controller's CPU
        (bench/scale.py). The history misses only quiet samples; the next one that is
        added trims the window by time as it would have."""
        if ep.desired_replicas != 0 or track.state.known_desired != 0 or mine:
            return False
        if load.in_flight or load.held or track.capped is not None:
            return False
        counters = track.history.counters
        if not counters or counters[-1] != load.requests:
            return False
        depth = self._queue.get(ep.name)
        return depth is None or (depth.pending == 0 and depth.running == 0)

    def _resume(self, ep: EndpointRecord) -> _Track:
        """A new track for the endpoint. When the count is still the one the last decision
        wrote (by this controller or one before it), the policy knows when it changed, so
        its stability period runs on from then instead of starting over."""
        track = self._tracks[ep.name] = _Track()
        mem = self.memory.get(ep.name)
        resumable = mem is not None and mem.scaled_at is not None
        if resumable and mem is not None and mem.scale_desired == ep.desired_replicas:
            track.state = ScalerState(known_desired=mem.scale_desired, last_change=mem.scaled_at)
        return track

    def _write(
        self,
        ep: EndpointRecord,
        decision: Decision,
        *,
        count: bool = True,
        limits: Quotas | None = None,
    ) -> bool:
        """The decision's count (unless `count` is False: its event only) and its event.
        With `limits` (a scale-up in a project with quotas), the project's usage is read
        again under its lock, as the API's quota check does: a change the API made since
        the pass began is counted (False, and the next pass decides again)."""
        assert decision.reason is not None
        try:
            with self.db.unit_of_work() as uow:
                fresh = uow.endpoints.get(ep.name)
                if (
                    fresh.desired_replicas != ep.desired_replicas
                    or fresh.spec.scaling != ep.spec.scaling
                    or fresh.status in IDLE_STATUSES
                ):
                    return False
                if limits is not None and not self._fits(uow, ep, decision.desired, limits):
                    return False
                if count:
                    uow.endpoints.set_desired(ep.name, decision.desired)
                uow.events.add(ep.name, EventKind.SCALED, decision.reason, dict(decision.data))
        except PodiumError as e:  # deleted meanwhile
            log.info("%s: desired count not written: %s", ep.name, e)
            return False
        if count:
            self.metrics.scaled(ep.name, ep.desired_replicas, decision.desired)
        log.info("%s: %s", ep.name, decision.reason)
        return True

    def _fits(self, uow: UnitOfWork, ep: EndpointRecord, desired: int, limits: Quotas) -> bool:
        uow.projects.lock(ep.project)
        others = Usage()
        for rec in uow.endpoints.list(projects=[ep.project]):
            if rec.name != ep.name:
                others += self._usage(rec)
        most, _ = room(limits, others, *self._per_replica(ep), from_zero=ep.desired_replicas == 0)
        return most is None or desired <= most

    async def _rule_metrics(
        self,
        endpoints: Sequence[EndpointRecord],
        by_endpoint: Mapping[str, list[TrackedReplica]],
        http: httpx.AsyncClient | None,
    ) -> dict[str, dict[str, float]]:
        """Per ready replica of an endpoint with rules, its figure for each rule."""
        targets: list[tuple[Target, Sequence[ScalingRule]]] = []
        for ep in endpoints:
            rules = ep.spec.scaling.rules
            if not rules:
                continue
            try:
                itype = self.settings.replica_size(ep.spec)
            except PodiumError:
                continue
            for r in by_endpoint.get(ep.name, []):
                if r.state is ReplicaState.READY:
                    target = Target(r.replica_id, r.base_url, itype.cpus, itype.memory_mb)
                    targets.append((target, rules))
        if http is None:
            return {}
        return await self.scraper.collect(http, targets, self.clock.monotonic())


class _Quotas:
    """One pass's view of the projects' quotas and usage; the usage follows the counts
    this pass writes, so two endpoints of a project cannot both take the last room."""

    def __init__(
        self, read: Callable[[], Mapping[str, Quotas]], usage: Callable[[EndpointRecord], Usage]
    ) -> None:
        self._read = read
        self._usage = usage
        self._limits: Mapping[str, Quotas] | None = None  # read when first asked
        self._used: dict[str, Usage] = {}
        self._unsummed: dict[str, list[EndpointRecord]] = {}  # summed when first asked

    def add(self, ep: EndpointRecord) -> None:
        """One of the pass's endpoints, as it stands: its usage counts for its project."""
        self._unsummed.setdefault(ep.project, []).append(ep)

    def of(self, project: str) -> Quotas | None:
        """The project's quotas; the first call of a pass reads them (one query): a pass
        whose endpoints all sit quietly at zero reads none."""
        if self._limits is None:
            self._limits = self._read()
        return self._limits.get(project)

    def used(self, project: str) -> Usage:
        added = self._unsummed.pop(project, ())
        if added:
            self._used[project] = sum(
                (self._usage(ep) for ep in added), self._used.get(project, Usage())
            )
        return self._used.get(project, Usage())

    def count(self, project: str, usage: Usage) -> None:
        self._used[project] = self.used(project) + usage
