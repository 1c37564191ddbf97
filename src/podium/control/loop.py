"""The controller loop: observe, decide (pure `reconciler.plan`), act, publish.

Runs in its own thread with its own asyncio loop, so database calls and process starts never
stall the gateway. `run_once()` is one full iteration (tests call it directly); `wake()` is
thread-safe and makes the next iteration start at once instead of at the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

import httpx

from podium.artifacts.sources import NodeCache
from podium.backends.base import Backend
from podium.control.actions import Actuator
from podium.control.autoscaling import Autoscaling
from podium.control.exits import settle_s
from podium.control.health import ProbeResult, probe
from podium.control.reconciler import EndpointView, ReplicaView, plan
from podium.control.tracked import EndpointMemory, TrackedReplica
from podium.core.clock import Clock, SystemClock
from podium.core.phases import EndpointStatus, EventKind, ExitReason, ReplicaState
from podium.core.routing import (
    EndpointRoute,
    GatewayView,
    ReplicaRoute,
    RoutingSource,
    endpoint_route,
)
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec
from podium.runtimes.presets import DEFAULT_LIVENESS, probe_specs
from podium.runtimes.registry import serves_openai
from podium.store.db import Database
from podium.store.records import EndpointRecord

log = logging.getLogger("podium.control")

STARTING_PROBE_S = 0.05  # a starting replica is polled this often (connection refused is cheap)
# A drained replica is out of the published table at least this long before it is stopped:
# the gateway reads the table and takes a replica slot without awaiting anything between,
# so this only has to outlast a thread switch, with a wide margin.
UNROUTED_GRACE_S = 0.1
_NO_STARTS = (EndpointStatus.PAUSED, EndpointStatus.FAILED, EndpointStatus.DELETING)


class Controller:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        backend: Backend,
        holder: RoutingSource,
        *,
        node_cache: NodeCache,
        gateway: GatewayView | None = None,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,  # probes and scrapes (tests: a MockTransport)
    ) -> None:
        self.settings = settings
        self.db = db
        self.backend = backend
        self.holder = holder
        self.gateway = gateway
        self.clock = clock or SystemClock()
        self.replicas: dict[str, TrackedReplica] = {}
        self.memory: dict[str, EndpointMemory] = {}
        self.act = Actuator(self, node_cache)
        self.scaling = Autoscaling(settings, db, self.clock, gateway)
        self._routes: dict[str, EndpointRoute] = {}
        self._adopted = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._first_pass = threading.Event()
        self._http: httpx.AsyncClient | None = http
        self.on_tick: Callable[[], None] | None = None  # test hook: called after each pass

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

    def stop(self) -> None:
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(30)

    def wake(self, endpoint: str | None = None) -> None:
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
            try:
                await self.run_once()
            except Exception:  # the loop must outlive any one bad pass
                log.exception("controller pass failed")
            self._first_pass.set()
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._sleep_s())
        self.act.downloads.cancel_all()
        self.act.starts.close()
        if self._http is not None:
            await self._http.aclose()

    def _sleep_s(self) -> float:
        now = self.clock.monotonic()
        due = [r.next_probe - now for r in self.replicas.values()]
        # A crashed replica's restart is due when its backoff ends, not at the next tick.
        due += [m.backoff_until - now for m in self.memory.values() if m.backoff_until > now]
        busy = any(
            r.state in (ReplicaState.STARTING, ReplicaState.DRAINING, ReplicaState.STOPPING)
            for r in self.replicas.values()
        )
        tick = self.settings.control.tick_s
        if busy:
            tick = min(tick, STARTING_PROBE_S * 2)
        return max(0.01, min([tick, *due]))

    # ------------------------------------------------------------------ one pass

    async def run_once(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False)
        if not self._adopted:
            self.act.adopt_all()
            self._adopted = True
        # Starts that ended since the last pass: tracked before the backend's report, so
        # a replica that already exited is known when its exit is.
        self.act.collect_starts()
        for observed in self.backend.poll():
            if not observed.alive:
                self.act.replica_exited(observed)
        await self._probe_all()
        with self.db.unit_of_work(read_only=True) as uow:
            endpoints = uow.endpoints.list()
        # Autoscale first, so a wake for held requests starts replicas in this same pass.
        endpoints = await self.scaling.run(
            endpoints, self.replicas.values(), self._http, skip=self._failing
        )
        names = {e.name for e in endpoints}
        for ep in endpoints:
            await self._reconcile(ep)
        for r in list(self.replicas.values()):
            if r.endpoint not in names and r.state in (ReplicaState.STARTING, ReplicaState.READY):
                self.act.stop(r, "its endpoint no longer exists")
        self.act.starts.cancel_endpoints(names)
        # Starts launched by this pass: a fast one is tracked now, a slow one later.
        await self.act.starts.settle()
        self.act.collect_starts()
        for name in list(self.memory):
            if name not in names:
                del self.memory[name]
        # Downloads nobody waits for any more (deleted, paused, failed, another revision).
        self.act.downloads.retain(
            (ep.name, ep.revision)
            for ep in endpoints
            if ep.status not in _NO_STARTS and not self._failing(ep.name)
        )
        # Publish before stopping anything drained: a replica leaves the gateway's table
        # before its process is told to stop.
        self._publish(endpoints)
        self._advance_draining()
        if self.on_tick is not None:
            self.on_tick()

    async def _reconcile(self, ep: EndpointRecord) -> None:
        self.act.observe(ep)
        fresh = ep.name not in self.memory
        mem = self.memory.setdefault(ep.name, EndpointMemory())
        if fresh and ep.status is EndpointStatus.FAILED:
            # Failed before this controller started: stay failed until the user changes
            # the endpoint (its generation moves on).
            mem.failure, mem.failure_generation = ep.status_reason or "failed", ep.generation
        if mem.failure is not None and mem.failure_generation != ep.generation:
            mem.failure = mem.failure_generation = None
            mem.crash_streak, mem.backoff_until = 0, 0.0
            mem.serving_crashes, mem.succeeded_at_crash, mem.serving_revision = 0, None, None
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
        )
        mine = [r for r in self.replicas.values() if r.endpoint == ep.name]
        views = [ReplicaView(r.replica_id, r.revision, r.state, r.started_mono) for r in mine]
        # Starts in flight are starting replicas: they count toward the desired count, and
        # the endpoint is not deleted under them (a cancelled one is stopped once tracked).
        views += [
            ReplicaView(rid, b.revision, ReplicaState.STARTING, b.since)
            for b in self.act.starts.pending(ep.name)
            for rid in b.replica_ids
        ]
        p = plan(view, views, now)
        for rid in p.stop:
            if rid in self.replicas:
                self.act.stop(self.replicas[rid], "not needed")
            else:
                self.act.starts.cancel(rid)
        for rid in p.drain:
            self.act.drain(self.replicas[rid])
        if p.start > 0:
            self.act.start(ep, mem, p.start)
        reason = p.reason
        if p.status is EndpointStatus.INITIALIZING and reason is None:
            # Resolving: the model's download progress is the status reason.
            reason = self.act.downloads.describe((ep.name, ep.revision))
        if p.status is not None and not (
            ep.status is EndpointStatus.DELETING and p.status is not EndpointStatus.DELETING
        ):
            self.act.set_status(ep, p.status, reason)
        if p.delete:
            self.act.delete_endpoint(ep.name)
            self.memory.pop(ep.name, None)  # its model paths are per revision number

    def _failing(self, name: str) -> bool:
        """The target revision cannot run (the failed status may not be written yet)."""
        mem = self.memory.get(name)
        return mem is not None and mem.failure is not None

    def _settle_streak(self, name: str, mem: EndpointMemory, now: float) -> None:
        """A replica that stayed ready for a while since the last crash ends the streak (a
        sibling ready since before it must not cancel the backoff of a crash loop)."""
        if mem.crash_streak == 0:
            return
        settle = settle_s(self.settings.control)
        for r in self.replicas.values():
            if r.endpoint != name or r.ready_at is None:
                continue
            if now - max(r.ready_at, mem.crashed_at) >= settle:
                mem.crash_streak, mem.backoff_until = 0, 0.0
                return

    # ------------------------------------------------------------------ probes

    async def _probe_all(self) -> None:
        now = self.clock.monotonic()
        due = [
            r
            for r in self.replicas.values()
            if r.state in (ReplicaState.STARTING, ReplicaState.READY) and r.next_probe <= now
        ]
        if not due:
            return
        specs = {}
        with self.db.unit_of_work(read_only=True) as uow:
            for name in {r.endpoint for r in due}:
                try:
                    specs[name] = uow.endpoints.get(name).spec
                except Exception:
                    continue
        await asyncio.gather(*(self._probe_one(r, specs.get(r.endpoint)) for r in due))

    async def _probe_one(self, r: TrackedReplica, spec: object) -> None:
        if not isinstance(spec, EndpointSpec) or self._http is None:
            return
        now = self.clock.monotonic()
        # External servers (command, vllm, …) are probed on their health route.
        ready_p, live_p = probe_specs(spec, self.act.revision_spec(r.endpoint, r.revision))
        if r.state is ReplicaState.STARTING:
            if now - r.starting_since < ready_p.initial_delay_s:
                r.next_probe = r.starting_since + ready_p.initial_delay_s
                return
            res = await probe(self._http, r.base_url + ready_p.path, ready_p.timeout_s)
            r.next_probe = self.clock.monotonic() + min(ready_p.period_s, STARTING_PROBE_S)
            if not res.timed_out:
                r.unanswered_since = None  # it answered: its event loop runs
            if res.ok:
                self.act.became_ready(r)
            elif res.timed_out and self._hung_for(r, spec, now) is not None:
                self._no_answer(r, spec, now, res)  # taken out of routing, still silent
            elif now - r.starting_since > self.settings.control.ready_timeout_s:
                self.act.kill(
                    r,
                    ExitReason.UNHEALTHY,
                    f"not ready after {self.settings.control.ready_timeout_s:g}s ({res.detail})",
                )
            return
        # Ready: liveness decides restarts, readiness decides routing.
        hung_after = self._hung_after(spec, live_p.path)
        live, ready = await asyncio.gather(
            probe(self._http, r.base_url + live_p.path, live_p.timeout_s, hung_after),
            probe(self._http, r.base_url + ready_p.path, ready_p.timeout_s),
        )
        r.next_probe = self.clock.monotonic() + min(ready_p.period_s, live_p.period_s)
        if live.timed_out and r.unanswered_since is None:
            r.unanswered_since = now  # when the first unanswered probe was sent
        elif not live.timed_out:
            r.unanswered_since = None
        if live.timed_out and self._hung_for(r, spec, now) is not None:
            self._no_answer(r, spec, now, live)
            return
        self._count(r, live, ready, live_p.failure_threshold, ready_p.failure_threshold)

    def _hung_limit_s(self, spec: EndpointSpec) -> float:
        """A call that runs this long is hung: the endpoint's timeout plus the grace."""
        return spec.timeout_s + max(0.0, self.settings.control.hung_grace_s)

    def _hung_for(self, r: TrackedReplica, spec: EndpointSpec, now: float) -> float | None:
        """How long the replica has answered no probe, once that reaches the hung limit
        (a long call holding the GIL within the endpoint's timeout is not a hang)."""
        if r.unanswered_since is None:
            return None
        silent = now - r.unanswered_since
        return silent if silent >= self._hung_limit_s(spec) else None

    def _no_answer(
        self, r: TrackedReplica, spec: EndpointSpec, now: float, res: ProbeResult
    ) -> None:
        silent = now - (r.unanswered_since or now)
        self.act.hung(
            r,
            f"hung: no answer to liveness probes for {silent:.0f}s ({res.detail}), past the "
            f"endpoint's timeout {spec.timeout_s:g}s plus the grace: its event loop is "
            "blocked, e.g. by a call holding the GIL",
            {"unanswered_s": round(silent, 3), "limit_s": self._hung_limit_s(spec)},
        )

    def _hung_after(self, spec: EndpointSpec, live_path: str) -> dict[str, str] | None:
        """Ask a Podium replica's liveness route to say "hung" once a call has run past the
        endpoint's current timeout plus the grace (external servers are not asked)."""
        if live_path != DEFAULT_LIVENESS:
            return None
        return {"hung_after_s": f"{self._hung_limit_s(spec):g}"}

    def _count(
        self,
        r: TrackedReplica,
        live: ProbeResult,
        ready: ProbeResult,
        live_max: int,
        ready_max: int,
    ) -> None:
        # An unanswered probe is not a liveness failure: only its duration counts (hung).
        if not live.timed_out:
            r.liveness_failures = 0 if live.ok else r.liveness_failures + 1
        r.readiness_failures = 0 if ready.ok else r.readiness_failures + 1
        if live.hung:  # already past timeout + grace: no threshold to wait for
            self.act.hung(r, live.detail, live.figures)
        elif r.liveness_failures >= live_max:
            self.act.kill(
                r,
                ExitReason.UNHEALTHY,
                f"liveness probe failed {r.liveness_failures} times: {live.detail}",
            )
        elif r.readiness_failures >= ready_max:
            self.act.not_ready(
                r, f"readiness probe failed {r.readiness_failures} times: {ready.detail}"
            )

    # ------------------------------------------------------------------ drain, publish, adopt

    def _advance_draining(self) -> None:
        now = self.clock.monotonic()
        for r in list(self.replicas.values()):
            if r.state is not ReplicaState.DRAINING or r.drain_since is None:
                continue
            if now - r.drain_since < UNROUTED_GRACE_S:
                continue  # a request may have read the table just before it was published
            busy = self.gateway.outstanding(r.replica_id) if self.gateway else 0
            if busy == 0 or now - r.drain_since >= self.settings.control.drain_timeout_s:
                self.act.stop(r, "drained")

    def _publish(self, endpoints: list[EndpointRecord]) -> None:
        routes: dict[str, EndpointRoute] = {}
        for ep in endpoints:
            if ep.status is EndpointStatus.DELETING:
                continue
            ready = tuple(
                ReplicaRoute(r.replica_id, r.host, r.port, r.revision)
                for r in sorted(self.replicas.values(), key=lambda r: r.replica_id)
                if r.endpoint == ep.name and r.state is ReplicaState.READY
            )
            routes[ep.name] = endpoint_route(
                ep.spec,
                self.act.current_status(ep),
                created=int(ep.created_at.timestamp()),
                openai=serves_openai(ep.spec.framework, ep.spec.task),
                replicas=ready,
            )
        if routes != self._routes:
            # The holder keeps what the API added or removed since this pass read the store.
            self._routes = routes
            self.holder.publish(routes)


__all__ = ["Controller", "EventKind"]
