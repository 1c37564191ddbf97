"""Probing: readiness and liveness of every replica, and what their answers mean.

Each replica's probe runs as its own task (`_Flight`), so a slow probe never holds up a
controller pass (autoscaling, starts, routing of every endpoint): a pass applies the
answers that have come, then sends the probes that are due, and waits at most
`PROBE_WAIT_S` for those (a fast answer is applied in the pass that asked; a slower one by
a later pass, which its end wakes). A replica whose probe is still out is not probed again.
A starting replica is polled often until it is ready (or its readiness timeout ends); a
ready one is asked for liveness (restarts) and readiness (routing). A probe is HTTP, TCP
or exec (`health.run_probe`); `failure_threshold` failures in a row turn a passing one
failing, `success_threshold` passes in a row turn a failing one back (liveness: always 1);
a probe that is off passes (readiness off: a starting replica is ready once its port
accepts a connection). A replica that answers no liveness probe for the endpoint's
timeout plus the grace is hung (its event loop is blocked); one that says a call has run
too long is hung too. The effects go through the `Actuator`, always within a pass.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from podium.control.actions import Actuator
from podium.control.health import ProbeResult, run_probe, tcp_probe
from podium.control.journal import Journal
from podium.control.state import ControllerState
from podium.control.tracked import TrackedReplica
from podium.core.clock import Clock
from podium.core.phases import ExitReason, ReplicaState
from podium.core.probe_spec import ProbeKind, ProbeSpec
from podium.core.settings import ControlSettings
from podium.core.spec import EndpointSpec
from podium.runtimes.presets import DEFAULT_LIVENESS, probe_specs
from podium.store.db import Database

log = logging.getLogger("podium.control")

STARTING_PROBE_S = 0.05  # a starting replica is polled this often (connection refused is cheap)
PROBE_WAIT_S = 0.25  # a pass waits at most this long for the probes it sent
PASSED = ProbeResult(ok=True)  # the answer of a probe that is off
READINESS_OFF = "readiness probe disabled: ready once its port accepted a connection"
_PROBED = (ReplicaState.STARTING, ReplicaState.READY)


@dataclass(frozen=True, slots=True)
class _Answers:
    ready: ProbeResult
    live: ProbeResult | None  # None for a starting replica (readiness only)


@dataclass(slots=True)
class _Flight:
    """One replica's probe in flight: what it was sent with, and its task."""

    replica: TrackedReplica
    state: ReplicaState  # the replica's state when it was sent
    sent_at: float
    spec: EndpointSpec
    ready_p: ProbeSpec
    live_p: ProbeSpec
    task: asyncio.Task[_Answers]


class Probing:
    def __init__(
        self,
        cfg: ControlSettings,
        db: Database,
        clock: Clock,
        state: ControllerState,
        journal: Journal,
        act: Actuator,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.clock = clock
        self.state = state
        self.journal = journal
        self.act = act
        self._wake = wake  # called when a probe ends: its answer is applied at once
        self._flights: dict[str, _Flight] = {}  # replica id -> its probe in flight

    async def run(self, http: httpx.AsyncClient) -> None:
        """Apply the answers that have come, send the probes that are due, and apply
        those of them that answer within `PROBE_WAIT_S`."""
        await self._collect()
        sent = self._send(http)
        if sent:
            await asyncio.wait(sent, timeout=PROBE_WAIT_S)
            await self._collect()

    def in_flight(self) -> set[str]:
        """The replicas whose probe has not answered yet."""
        return set(self._flights)

    async def answered(self) -> None:
        """Wait until every probe in flight has answered (tests; a pass never does)."""
        await asyncio.gather(*(f.task for f in self._flights.values()), return_exceptions=True)

    async def close(self) -> None:
        """Cancel every probe in flight (an exec probe's process group is killed) and wait
        for them to end: the controller is stopping."""
        tasks = [f.task for f in self._flights.values()]
        self._flights.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _send(self, http: httpx.AsyncClient) -> list[asyncio.Task[_Answers]]:
        now = self.clock.monotonic()
        due = [
            r
            for r in self.state.replicas.values()
            if r.state in _PROBED and r.next_probe <= now and r.replica_id not in self._flights
        ]
        if not due:
            return []
        specs = {}
        with self.db.unit_of_work(read_only=True) as uow:
            for name in {r.endpoint for r in due}:
                try:
                    specs[name] = uow.endpoints.get(name).spec
                except Exception:
                    continue
        sent = []
        for r in due:
            spec = specs.get(r.endpoint)
            if not isinstance(spec, EndpointSpec):
                continue
            # External servers (command, vllm, …) are probed on their health route.
            ready_p, live_p = probe_specs(spec, self.journal.revision_spec(r.endpoint, r.revision))
            if (
                r.state is ReplicaState.STARTING
                and now - r.starting_since < ready_p.initial_delay_s
            ):
                r.next_probe = r.starting_since + ready_p.initial_delay_s
                continue
            task = asyncio.create_task(self._ask(http, r, r.state, spec, ready_p, live_p))
            task.add_done_callback(lambda _: self._wake())
            r.next_probe = math.inf  # due again once this one has answered
            self._flights[r.replica_id] = _Flight(r, r.state, now, spec, ready_p, live_p, task)
            sent.append(task)
        return sent

    async def _ask(
        self,
        http: httpx.AsyncClient,
        r: TrackedReplica,
        state: ReplicaState,
        spec: EndpointSpec,
        ready_p: ProbeSpec,
        live_p: ProbeSpec,
    ) -> _Answers:
        """The probe itself (its own task): no effect here, only the answers."""
        if state is ReplicaState.STARTING:
            return _Answers(await self._readiness(http, r, state, ready_p), None)
        # Ready: liveness decides restarts, readiness decides routing.
        live, ready = await asyncio.gather(
            self._liveness(http, r, spec, live_p), self._readiness(http, r, state, ready_p)
        )
        return _Answers(ready, live)

    async def _collect(self) -> None:
        """Apply every answer that has come; drop the probes of replicas that left the
        probed states meanwhile (stopped, draining, gone)."""
        for rid, f in list(self._flights.items()):
            r = f.replica
            current = self.state.replicas.get(rid) is r and r.state is f.state
            if not current:
                del self._flights[rid]
                f.task.cancel()
                if r.state in _PROBED:
                    r.next_probe = self.clock.monotonic()
                continue
            if not f.task.done():
                continue
            del self._flights[rid]
            try:
                answers = f.task.result()
            except Exception:  # the probes catch their own errors: a bug, not an answer
                log.exception("probe of replica %s failed", rid)
                r.next_probe = self.clock.monotonic() + f.ready_p.period_s
                continue
            if answers.live is None:
                await self._starting(r, f.spec, f.ready_p, f.sent_at, answers.ready)
            else:
                await self._ready(r, f, answers.live, answers.ready)

    async def _ready(
        self, r: TrackedReplica, f: _Flight, live: ProbeResult, ready: ProbeResult
    ) -> None:
        spec, live_p, ready_p, now = f.spec, f.live_p, f.ready_p, f.sent_at
        r.next_probe = self.clock.monotonic() + min(ready_p.period_s, live_p.period_s)
        if live.timed_out and r.unanswered_since is None:
            r.unanswered_since = now  # when the first unanswered probe was sent
        elif not live.timed_out:
            r.unanswered_since = None
        if live.timed_out and self._hung_for(r, spec, now) is not None:
            await self._no_answer(r, spec, now, live)
            return
        await self._count(r, live, ready, live_p, ready_p)

    async def _starting(
        self,
        r: TrackedReplica,
        spec: EndpointSpec,
        ready_p: ProbeSpec,
        now: float,
        res: ProbeResult,
    ) -> None:
        """A starting replica: ready after `success_threshold` readiness passes in a row
        (polled often until the first), killed once the ready timeout has passed."""
        r.readiness_successes = r.readiness_successes + 1 if res.ok else 0
        period = ready_p.period_s if r.readiness_successes else STARTING_PROBE_S
        r.next_probe = self.clock.monotonic() + min(ready_p.period_s, period)
        if not res.timed_out:
            r.unanswered_since = None  # it answered: its event loop runs
        if res.ok and r.readiness_successes >= ready_p.success_threshold:
            self.act.became_ready(r, "" if ready_p.enabled else READINESS_OFF)
        elif res.timed_out and self._hung_for(r, spec, now) is not None:
            await self._no_answer(r, spec, now, res)  # taken out of routing, still silent
        elif now - r.starting_since > self.cfg.ready_timeout_s:
            why = res.detail or f"{r.readiness_successes} of {ready_p.success_threshold} passes"
            await self.act.kill(
                r, ExitReason.UNHEALTHY, f"not ready after {self.cfg.ready_timeout_s:g}s ({why})"
            )

    async def _readiness(
        self, http: httpx.AsyncClient, r: TrackedReplica, state: ReplicaState, p: ProbeSpec
    ) -> ProbeResult:
        """The readiness probe; with it off, a starting replica is ready once its port
        accepts a connection, and a ready one stays routed."""
        if not p.enabled:
            if state is ReplicaState.READY:
                return PASSED
            return await tcp_probe(r.host, r.port, p.timeout_s)
        return await run_probe(http, p, r.host, r.port)

    async def _liveness(
        self, http: httpx.AsyncClient, r: TrackedReplica, spec: EndpointSpec, p: ProbeSpec
    ) -> ProbeResult:
        """The liveness probe; with it off, a pass (no restart, no hang detection)."""
        if not p.enabled:
            return PASSED
        return await run_probe(http, p, r.host, r.port, self._hung_after(spec, p))

    def _hung_limit_s(self, spec: EndpointSpec) -> float:
        """A call that runs this long is hung: the endpoint's timeout plus the grace."""
        return spec.timeout_s + max(0.0, self.cfg.hung_grace_s)

    def _hung_for(self, r: TrackedReplica, spec: EndpointSpec, now: float) -> float | None:
        """How long the replica has answered no probe, once that reaches the hung limit
        (a long call holding the GIL within the endpoint's timeout is not a hang)."""
        if r.unanswered_since is None:
            return None
        silent = now - r.unanswered_since
        return silent if silent >= self._hung_limit_s(spec) else None

    async def _no_answer(
        self, r: TrackedReplica, spec: EndpointSpec, now: float, res: ProbeResult
    ) -> None:
        silent = now - (r.unanswered_since or now)
        await self.act.hung(
            r,
            f"hung: no answer to liveness probes for {silent:.0f}s ({res.detail}), past the "
            f"endpoint's timeout {spec.timeout_s:g}s plus the grace: its event loop is "
            "blocked, e.g. by a call holding the GIL",
            {"unanswered_s": round(silent, 3), "limit_s": self._hung_limit_s(spec)},
        )

    def _hung_after(self, spec: EndpointSpec, live_p: ProbeSpec) -> dict[str, str] | None:
        """Ask a Podium replica's liveness route to say "hung" once a call has run past the
        endpoint's current timeout plus the grace (external servers are not asked)."""
        own = live_p.kind is ProbeKind.HTTP and live_p.port is None
        if not own or live_p.path != DEFAULT_LIVENESS:
            return None
        return {"hung_after_s": f"{self._hung_limit_s(spec):g}"}

    async def _count(
        self,
        r: TrackedReplica,
        live: ProbeResult,
        ready: ProbeResult,
        live_p: ProbeSpec,
        ready_p: ProbeSpec,
    ) -> None:
        # An unanswered probe is not a liveness failure: only its duration counts (hung).
        if not live.timed_out:
            r.liveness_failures, r.liveness_successes = _tally(
                live.ok, r.liveness_failures, r.liveness_successes
            )
        r.readiness_failures, r.readiness_successes = _tally(
            ready.ok, r.readiness_failures, r.readiness_successes
        )
        if live.hung:  # already past timeout + grace: no threshold to wait for
            await self.act.hung(r, live.detail, live.figures)
        elif r.liveness_failures >= live_p.failure_threshold:
            await self.act.kill(
                r,
                ExitReason.UNHEALTHY,
                f"liveness probe failed {r.liveness_failures} times: {live.detail}",
            )
        elif r.readiness_failures >= ready_p.failure_threshold:
            self.act.not_ready(
                r, f"readiness probe failed {r.readiness_failures} times: {ready.detail}"
            )


def _tally(ok: bool, failures: int, successes: int) -> tuple[int, int]:
    """(failures, successes) in a row after one answer: each answer ends the other run (as
    Kubernetes counts `failureThreshold` and `successThreshold`)."""
    return (0, successes + 1) if ok else (failures + 1, 0)
