"""The controller loop: observe, decide (pure `reconciler.plan`), act, publish.

Runs in its own thread with its own asyncio loop, so database calls and process starts never
stall the gateway. Every backend call is awaited on that loop (the backend keeps its own
blocking work off it); replica starts are tasks on it (`starts`). `run_once()` is one
full iteration (tests call it directly); `wake()` is thread-safe and makes the next
iteration start at once instead of at the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

import httpx

from podium.backends.base import Backend
from podium.control.actions import Actuator
from podium.control.adoption import Adoption
from podium.control.autoscaling import Autoscaling
from podium.control.draining import Draining
from podium.control.exits import Exits, settle_s
from podium.control.history_metrics import HistoryCollector
from podium.control.journal import Journal
from podium.control.metrics import ControllerCollector, ControllerMetrics
from podium.control.metrics_history import MetricsSampler
from podium.control.preparing import Preparing
from podium.control.probing import STARTING_PROBE_S, Probing
from podium.control.publishing import Publisher
from podium.control.recall import Recall
from podium.control.reconciler import EndpointView, ReplicaView, plan
from podium.control.starts import Starts
from podium.control.state import ControllerState
from podium.control.tracked import EndpointMemory
from podium.control.wake_path import WakePath
from podium.coordination.fenced_backend import FencedBackend
from podium.coordination.leadership import RETRY_S, Lease, SoleLease
from podium.core.clock import Clock, SystemClock
from podium.core.errors import Fenced
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.routing import GatewayView, RoutingSource
from podium.core.settings import Settings
from podium.store.db import Database
from podium.store.records import EndpointRecord

log = logging.getLogger("podium.control")

_NO_STARTS = (EndpointStatus.PAUSED, EndpointStatus.FAILED, EndpointStatus.DELETING)


class Controller:
    """The loop and the order of one pass. Builds its parts around one `ControllerState`
    and hands each the collaborators it needs; none of them refers back to the loop."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        backend: Backend,
        holder: RoutingSource,
        *,
        gateway: GatewayView | None = None,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,  # probes and scrapes (tests: a MockTransport)
        lease: Lease | None = None,  # None: the sole lease (`podium up`), always leading
    ) -> None:
        self.settings = settings
        # Leadership (issue 16): only the candidate that holds the lease runs passes. Its
        # parts get a fenced view of the database (every write checks the lease's epoch in
        # its own transaction) and a fenced backend (start, stop, kill only while leading).
        # The sole lease of `podium up` (SQLite) wraps nothing: one process, as before.
        self.lease: Lease = lease if lease is not None else SoleLease()
        self.fenced_backend: FencedBackend | None = None
        if self.lease.sole:
            self.db, self.backend = db, backend
        else:
            self.fenced_backend = FencedBackend(backend, self.lease)
            self.db, self.backend = db.fenced(self.lease.fence.check), self.fenced_backend
        self.clock = clock or SystemClock()
        self._gateway = gateway
        self._holder = holder
        # Passes, scaling decisions and replicas, for the server's /metrics (`collector`).
        self.instruments = ControllerMetrics()
        self._build()
        self._leading = False
        self._tenures = 0  # how many times this process took the lead
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._replicas_stay = False
        self._first_pass = threading.Event()
        self._http: httpx.AsyncClient | None = http
        self.on_tick: Callable[[], None] | None = None  # test hook: called after each pass

    def _build(self) -> None:
        """The parts of a pass around a fresh `ControllerState`: at construction, and again
        when the lead is lost (the next tenure starts from the store, as a new leader)."""
        cfg = self.settings.control
        self.state = ControllerState(starts=Starts(self.wake))
        self.journal = Journal(self.db, self.state, self.clock)
        self.recall = Recall(self.db, self.clock, self.state)
        self.state.load_memory = self.recall.load
        exits = Exits(
            cfg, self.clock, self.backend, self.state, self.journal, self._gateway, self.wake
        )
        self.preparing = Preparing(self.backend, self.journal.event)
        self.act = Actuator(
            self.settings,
            self.db,
            self.backend,
            self.clock,
            self.state,
            self.journal,
            exits,
            self.preparing,
        )
        self.adoption = Adoption(self.backend, self.clock, self.state, self.journal, exits)
        self.probing = Probing(
            cfg, self.db, self.clock, self.state, self.journal, self.act, wake=self.wake
        )
        self.draining = Draining(
            cfg, self.clock, self.state, self.journal, self._gateway, self.act.stop
        )
        self.publisher = Publisher(self._holder, self.state, self.clock)
        self._listed: Sequence[EndpointRecord] | None = None  # as the last pass published
        self.scaling = Autoscaling(
            self.settings,
            self.db,
            self.clock,
            self._gateway,
            memory=self.state.memory,
            metrics=self.instruments,
        )
        self.metrics = MetricsSampler(
            self.settings, self.db, self.clock, self._gateway, self.backend, self.state
        )
        self.wake_path = WakePath(
            self.db,
            self.state,
            self.publisher,
            self.scaling,
            self.recall,
            self._gateway,
            self._reconcile,
            self.act.collect_starts,
            self.probing.run,
        )
        self._adopted = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="podium-controller", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        # Serve nothing before one full pass: replicas adopted, statuses corrected after a
        # restart and the routing table published (otherwise the gateway would answer 404).
        self._first_pass.wait(60)

    def stop(self, *, replicas_stay: bool = False) -> None:
        """End the loop. `replicas_stay`: the server leaves the replicas running (for the
        next leader), so their usage rows are not ended."""
        self._replicas_stay = replicas_stay
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(30)

    def wake(self, endpoint: str | None = None) -> None:
        """Run a pass now (from any thread); `endpoint`: the one the wake is for, e.g. the
        gateway holds a request for it and it has no replica (`wake_path`)."""
        if endpoint is not None:
            self.wake_path.note(endpoint)
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def _thread_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(self._run())
        finally:
            loop.close()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            # Cleared before the pass, not after it: a wake during the pass (which may have
            # read the store before the change that woke it) brings another pass at once.
            self._wake.clear()
            if not self._leading and not self._take_lead():
                # Standing by: no polling, probing, publishing or scaling; only a try to
                # take the lead every RETRY_S (a wake does not make it try sooner).
                self._first_pass.set()  # a standby serves its other roles at once
                await asyncio.sleep(RETRY_S)
                continue
            try:
                if not self.lease.holds():
                    raise Fenced("the controller lease was lost")
                await self.run_once()
            except Fenced as e:
                await self._stand_down(str(e))
                continue
            except Exception:  # the loop must outlive any one bad pass
                log.exception("controller pass failed")
            self._first_pass.set()
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._sleep_s())
        await self._close_parts()
        if self._leading and not self._replicas_stay:
            # Replicas left running for the next leader (several servers on PostgreSQL)
            # keep their usage rows open: it adopts them.
            self.journal.end_usage()
        self.lease.release()  # a graceful stop hands the lead over at once
        if self._http is not None:
            await self._http.aclose()

    def _take_lead(self) -> bool:
        """Try to take the lead (never waits for the holder); True when this process leads.
        A new tenure starts with adoption: the replicas the store names that are alive are
        tracked again (same processes), and the autoscaler's memory is read from the store."""
        if not self.lease.try_acquire():
            return False
        self._leading = True
        self._tenures += 1
        self.instruments.led(self.lease.epoch)
        if not self.lease.sole:  # `podium up` logs as it always did
            log.info("leading the controllers (epoch %d)", self.lease.epoch)
        return True

    async def _stand_down(self, why: str) -> None:
        """The lead is gone: stop acting at once, stop no replica, forget this tenure's
        state (the next one starts from the store) and stand by again."""
        log.warning("standing down as controller leader: %s", why)
        self._leading = False
        self.instruments.led(0)
        if self.fenced_backend is not None:
            self.fenced_backend.forget_lead()
        self.lease.release()
        await self._close_parts()
        self._build()

    async def _close_parts(self) -> None:
        """Cancel what this tenure has in flight (probes, exec probes' processes, model
        fetches, starts not yet launched); replicas keep running."""
        await self.probing.close()  # probes in flight are cancelled, exec ones killed
        await self.preparing.release_all()
        await self.state.starts.close()

    def _sleep_s(self) -> float:
        now = self.clock.monotonic()
        replicas, memory = self.state.replicas.values(), self.state.memory.values()
        due = [r.next_probe - now for r in replicas]
        # A crashed replica's restart is due when its backoff ends, not at the next tick.
        due += [m.backoff_until - now for m in memory if m.backoff_until > now]
        busy = any(
            r.state in (ReplicaState.STARTING, ReplicaState.DRAINING, ReplicaState.STOPPING)
            for r in replicas
        )
        tick = self.settings.control.tick_s
        if busy:
            tick = min(tick, STARTING_PROBE_S * 2)
        return max(0.01, min([tick, *due]))

    def collector(self) -> ControllerCollector:
        """The controller's Prometheus collector (the server registers it in its registry)."""
        return ControllerCollector(self.instruments, lambda: self.state.replicas)

    @property
    def leading(self) -> bool:
        """Does this controller run passes now (it holds the lease)?"""
        return self._leading

    def history_collector(self) -> HistoryCollector:
        """The metrics history's latest figures, for the server's /metrics."""
        return HistoryCollector(lambda: self.metrics)  # a new tenure has a new sampler

    # ------------------------------------------------------------------ one pass

    async def run_once(self) -> None:
        """One pass, timed and counted (`instruments`), failed or not."""
        started = time.perf_counter()
        try:
            await self._pass()
        except Exception:
            self.instruments.pass_done(time.perf_counter() - started, failed=True)
            raise
        self.instruments.pass_done(time.perf_counter() - started)

    async def _pass(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False)
        http, state = self._http, self.state
        if not self._adopted:
            managed = {}
            if self._tenures > 1:  # led before in this process: the backend runs some
                managed = {o.replica_id: o for o in await self.backend.poll() if o.alive}
            await self.adoption.adopt_all(managed)
            self._adopted = True
        # Starts that ended since the last pass: tracked before the backend's report, so
        # a replica that already exited is known when its exit is.
        self.act.collect_starts()
        for observed in await self.backend.poll():
            if not observed.alive:
                await self.act.replica_exited(observed)
        await self.probing.run(http)
        # A wake's short path (`wake_path`): route what just became ready, start what was
        # just woken, before the pass goes over every endpoint.
        self.wake_path.publish_newly_ready(self._listed)
        await self.wake_path.lane(http, self._listed)
        with self.db.unit_of_work(read_only=True) as uow:
            endpoints = uow.endpoints.list()
            self.scaling.read_queue(uow)  # the task queue's depth, at most once a second
        for ep in endpoints:  # read from the store when first seen (`recall`)
            self.recall.remember(ep)
        # Autoscale first, so a wake for held requests starts replicas in this same pass.
        desired = {e.name: e.desired_replicas for e in endpoints}
        endpoints = await self.scaling.run(
            endpoints, state.replicas.values(), http, skip=state.failing
        )
        names = {e.name for e in endpoints}
        # The endpoints the autoscaler just changed first (a wake starts its replica before
        # 1,000 quiet endpoints are reconciled), the rest in the store's order.
        scaled = [e for e in endpoints if desired.get(e.name) != e.desired_replicas]
        for ep in scaled:
            await self._reconcile(ep)
        for ep in endpoints:
            if desired.get(ep.name) == ep.desired_replicas:
                await self._reconcile(ep)
        for r in list(state.replicas.values()):
            if r.endpoint not in names and r.state in (ReplicaState.STARTING, ReplicaState.READY):
                await self.act.stop(r, "its endpoint no longer exists")
        state.starts.cancel_endpoints(names)
        # Starts launched by this pass: a fast one is tracked now, a slow one later.
        await state.starts.settle()
        self.act.collect_starts()
        for name in [n for n in state.memory if n not in names]:
            del state.memory[name]
        self.recall.save_changed()
        # Models nobody waits for any more (deleted, paused, failed, another revision):
        # the backend cancels their downloads.
        await self.preparing.retain(
            (ep.name, ep.revision)
            for ep in endpoints
            if ep.status not in _NO_STARTS and not state.failing(ep.name)
        )
        # Publish before stopping anything drained: a replica leaves the gateway's table
        # before its process is told to stop.
        self.publisher.publish(endpoints)
        self._listed = endpoints
        await self.draining.advance(http)
        await self.metrics.run(endpoints)  # when an interval has passed (never raises)
        if self.on_tick is not None:
            self.on_tick()

    async def _reconcile(self, ep: EndpointRecord) -> None:
        await self.act.observe(ep)
        mem = self.recall.remember(ep)
        if mem.failure is not None and mem.failure_generation != ep.generation:
            mem.forget_failure()
        now = self.clock.monotonic()
        self._settle_streak(ep.name, mem, now)
        view = EndpointView(
            name=ep.name,
            status=ep.status,
            revision=ep.revision,
            desired=ep.desired_replicas,
            crash_streak=max(mem.crash_streak, mem.serving_crashes),
            backoff_until=mem.backoff_until,
            failure=mem.failure,
            make_room=self.act.making_room(ep, mem),
        )
        replicas, starts = self.state.replicas, self.state.starts
        views = [
            ReplicaView(r.replica_id, r.revision, r.state, r.started_mono)
            for r in self.state.of(ep.name)
        ]
        # Starts in flight are starting replicas: they count toward the desired count, and
        # the endpoint is not deleted under them (a cancelled one is stopped once tracked).
        views += [
            ReplicaView(rid, b.revision, ReplicaState.STARTING, b.since)
            for b in starts.pending(ep.name)
            for rid in b.replica_ids
        ]
        p = plan(view, views, now)
        for rid in p.stop:
            if rid in replicas:
                await self.act.stop(replicas[rid], "not needed")
            else:
                starts.cancel(rid)
        for rid in p.drain:
            self.act.drain(replicas[rid])
        if p.start > 0:
            await self.act.start(ep, mem, p.start)
        else:  # nothing more wanted: no replica waits for room (GPUs) any more
            mem.waiting_for, mem.unplaced = None, 0
        reason = p.reason or mem.waiting_for  # pending replicas: why they wait
        if p.status is EndpointStatus.INITIALIZING and reason is None:
            # Resolving: the model's download progress is the status reason.
            reason = self.preparing.describe((ep.name, ep.revision))
        if p.status is not None and not (
            ep.status is EndpointStatus.DELETING and p.status is not EndpointStatus.DELETING
        ):
            self.journal.set_status(ep, p.status, reason)
        if p.delete:
            await self.act.delete_endpoint(ep.name)  # its memory too: revisions restart from 1

    def _settle_streak(self, name: str, mem: EndpointMemory, now: float) -> None:
        """A replica that stayed ready for a while since the last crash ends the streak (a
        sibling ready since before it must not cancel the backoff of a crash loop)."""
        if mem.crash_streak == 0:
            return
        settle = settle_s(self.settings.control)
        for r in self.state.of(name):
            if r.ready_at is None:
                continue
            if now - max(r.ready_at, mem.crashed_at) >= settle:
                mem.crash_streak, mem.backoff_until = 0, 0.0
                return


__all__ = ["STARTING_PROBE_S", "Controller", "EventKind"]
