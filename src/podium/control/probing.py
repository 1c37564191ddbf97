"""Probing: readiness and liveness of every replica, and what their answers mean.

Each probe of each replica runs as its own task (`_Flight`, one per replica and `Role`),
so a slow probe holds up neither a controller pass (autoscaling, starts, routing of every
endpoint) nor the replica's other probe: a slow readiness probe never delays the liveness
answer that restarts a hung replica. A pass applies the answers that have come, then
sends the probes that are due, and waits at most `PROBE_WAIT_S` for those (a fast answer
is applied in the pass that asked; a slower one by a later pass, which its end wakes). A
probe still out is not sent again; one whose `ProbeSpec` is no longer the endpoint's is
cancelled and sent again with the new spec. A starting replica is polled often until it
is ready (or its readiness timeout ends); a ready one is asked for liveness (restarts) and
readiness (routing), each at its own `period_s`. A probe is HTTP, TCP or exec
(`health.run_probe`); `failure_threshold` failures in a row turn a passing one failing,
`success_threshold` passes in a row turn a failing one back (liveness: always 1); a probe
that is off passes (readiness off: a starting replica is ready once its port accepts a
connection); a probe task that ends cancelled or raises is a failed probe. A replica that
answers no liveness probe for the endpoint's timeout plus the grace is hung (its event
loop is blocked); one that says a call has run too long is hung too. The effects go
through the `Actuator`, always within a pass.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

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


class Role(StrEnum):
    """Which of a replica's probes: each is sent, answered and applied on its own."""

    READINESS = "readiness"
    LIVENESS = "liveness"


_Key = tuple[str, Role]  # (replica id, role): one flight each


@dataclass(slots=True)
class _Flight:
    """One probe in flight: what it was sent with, and its task."""

    replica: TrackedReplica
    role: Role
    state: ReplicaState  # the replica's state when it was sent
    sent_at: float
    spec: EndpointSpec
    probe: ProbeSpec
    task: asyncio.Task[ProbeResult]


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
        self._wake = wake  # called when a probe ends after its pass: its answer is applied
        self._flights: dict[_Key, _Flight] = {}
        self._due: dict[_Key, float] = {}  # when each probe is due again (absent: now)
        self._waiting = False  # a pass is waiting for the probes it sent

    async def run(self, http: httpx.AsyncClient) -> None:
        """Apply the answers that have come, send the probes that are due, and apply
        those of them that answer within `PROBE_WAIT_S`."""
        now = self.clock.monotonic()
        due = [r for r in self.state.replicas.values() if self._roles_due(r, now)]
        specs = self._specs(
            {f.replica.endpoint for f in self._flights.values()} | {r.endpoint for r in due}
        )
        await self._collect(specs)
        sent = self._send(http, specs)
        if sent:
            self._waiting = True  # what ends now is applied below: no wake for it
            try:
                await asyncio.wait(sent, timeout=PROBE_WAIT_S)
            finally:
                self._waiting = False
            await self._collect(specs)

    def in_flight(self) -> set[str]:
        """The replicas with a probe that has not answered yet."""
        return {rid for rid, _ in self._flights}

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

    def _roles_due(self, r: TrackedReplica, now: float) -> list[Role]:
        """The replica's probes to send now: readiness while starting, both once ready;
        none while `next_probe` (its earliest) is ahead, and none already out."""
        if r.state not in _PROBED or r.next_probe > now:
            return []
        roles = [Role.READINESS] if r.state is ReplicaState.STARTING else list(Role)
        return [
            role
            for role in roles
            if (key := (r.replica_id, role)) not in self._flights and self._due.get(key, 0) <= now
        ]

    def _schedule(self, r: TrackedReplica, role: Role, at: float) -> None:
        """`role` is due at `at`; the replica's `next_probe` is its earliest probe due that
        is not out (the loop sleeps until it)."""
        self._due[r.replica_id, role] = at
        self._sync(r)

    def _sync(self, r: TrackedReplica) -> None:
        roles = [Role.READINESS] if r.state is ReplicaState.STARTING else list(Role)
        r.next_probe = min(
            (
                self._due.get((r.replica_id, role), 0.0)
                for role in roles
                if (r.replica_id, role) not in self._flights
            ),
            default=math.inf,  # every probe is out: due again once one has answered
        )

    def _specs(self, names: set[str]) -> dict[str, EndpointSpec]:
        specs: dict[str, EndpointSpec] = {}
        if not names:
            return specs
        with self.db.unit_of_work(read_only=True) as uow:
            for name in names:
                try:
                    spec = uow.endpoints.get(name).spec
                except Exception:
                    continue
                if isinstance(spec, EndpointSpec):
                    specs[name] = spec
        return specs

    def _probe(self, r: TrackedReplica, role: Role, spec: EndpointSpec) -> ProbeSpec:
        """The endpoint's current `role` probe of the replica (external servers are probed
        on their health route)."""
        ready_p, live_p = probe_specs(spec, self.journal.revision_spec(r.endpoint, r.revision))
        return ready_p if role is Role.READINESS else live_p

    def _send(
        self, http: httpx.AsyncClient, specs: dict[str, EndpointSpec]
    ) -> list[asyncio.Task[ProbeResult]]:
        now = self.clock.monotonic()
        alive = set(self.state.replicas)
        for key in [k for k in self._due if k[0] not in alive]:
            del self._due[key]
        sent = []
        for r in list(self.state.replicas.values()):
            spec = specs.get(r.endpoint)
            if spec is None:
                continue
            for role in self._roles_due(r, now):
                p = self._probe(r, role, spec)
                if r.state is ReplicaState.STARTING and now - r.starting_since < p.initial_delay_s:
                    self._schedule(r, role, r.starting_since + p.initial_delay_s)
                    continue
                key = (r.replica_id, role)
                task = asyncio.create_task(self._ask(http, r, role, spec, p))
                task.add_done_callback(functools.partial(self._ended, key))
                self._flights[key] = _Flight(r, role, r.state, now, spec, p, task)
                self._sync(r)
                sent.append(task)
        return sent

    def _ended(self, key: _Key, task: asyncio.Task[ProbeResult]) -> None:
        """A probe ended: wake the loop unless the pass that sent it is waiting for it (it
        applies the answer itself) or its answer is already applied or dropped."""
        f = self._flights.get(key)
        if not self._waiting and f is not None and f.task is task:
            self._wake()

    async def _ask(
        self,
        http: httpx.AsyncClient,
        r: TrackedReplica,
        role: Role,
        spec: EndpointSpec,
        p: ProbeSpec,
    ) -> ProbeResult:
        """The probe itself (its own task): no effect here, only the answer."""
        if role is Role.READINESS:
            return await self._readiness(http, r, r.state, p)
        return await self._liveness(http, r, spec, p)

    async def _collect(self, specs: dict[str, EndpointSpec]) -> None:
        """Apply every answer that has come; drop the probes of replicas that left the
        probed states meanwhile (stopped, draining, gone) and those whose probe spec is no
        longer the endpoint's (the new one is sent at once)."""
        now = self.clock.monotonic()
        for key, f in list(self._flights.items()):
            r = f.replica
            current = self.state.replicas.get(r.replica_id) is r and r.state is f.state
            spec = specs.get(r.endpoint)
            changed = current and spec is not None and self._probe(r, f.role, spec) != f.probe
            if not current or changed:
                del self._flights[key]
                f.task.cancel()
                if r.state in _PROBED:
                    self._schedule(r, f.role, now)
                continue
            if not f.task.done():
                continue
            del self._flights[key]
            res = self._answer(f)
            if f.role is Role.LIVENESS:
                await self._live(r, f, res)
            elif f.state is ReplicaState.STARTING:
                await self._starting(r, f, res)
            else:
                self._ready(r, f, res)

    def _answer(self, f: _Flight) -> ProbeResult:
        """The flight's answer; one that was cancelled elsewhere or raised (the probes
        catch their own errors: a bug) is a failed probe."""
        what = f"{f.role.value} probe of replica {f.replica.replica_id}"
        if f.task.cancelled():
            log.warning("%s was cancelled", what)
            return ProbeResult(ok=False, detail=f"{f.role.value} probe cancelled")
        error = f.task.exception()
        if error is not None:
            log.error("%s failed", what, exc_info=error)
            return ProbeResult(ok=False, detail=f"{f.role.value} probe failed: {error!r}")
        return f.task.result()

    async def _live(self, r: TrackedReplica, f: _Flight, live: ProbeResult) -> None:
        """A ready replica's liveness answer: restarts and hang handling."""
        spec, live_p, sent = f.spec, f.probe, f.sent_at
        self._schedule(r, Role.LIVENESS, self.clock.monotonic() + live_p.period_s)
        if live.timed_out and r.unanswered_since is None:
            r.unanswered_since = sent  # when the first unanswered probe was sent
        elif not live.timed_out:
            r.unanswered_since = None
        if live.timed_out:
            # An unanswered probe is not a liveness failure: only its duration counts.
            if self._hung_for(r, spec, sent) is not None:
                await self._no_answer(r, spec, sent, live)
            return
        r.liveness_failures, r.liveness_successes = _tally(
            live.ok, r.liveness_failures, r.liveness_successes
        )
        if live.hung:  # already past timeout + grace: no threshold to wait for
            await self.act.hung(r, live.detail, live.figures)
        elif r.liveness_failures >= live_p.failure_threshold:
            await self.act.kill(
                r,
                ExitReason.UNHEALTHY,
                f"liveness probe failed {r.liveness_failures} times: {live.detail}",
            )

    def _ready(self, r: TrackedReplica, f: _Flight, ready: ProbeResult) -> None:
        """A ready replica's readiness answer: routing."""
        self._schedule(r, Role.READINESS, self.clock.monotonic() + f.probe.period_s)
        r.readiness_failures, r.readiness_successes = _tally(
            ready.ok, r.readiness_failures, r.readiness_successes
        )
        if r.readiness_failures >= f.probe.failure_threshold:
            self.act.not_ready(
                r, f"readiness probe failed {r.readiness_failures} times: {ready.detail}"
            )

    async def _starting(self, r: TrackedReplica, f: _Flight, res: ProbeResult) -> None:
        """A starting replica: ready after `success_threshold` readiness passes in a row
        (polled often until the first), killed once the ready timeout has passed."""
        spec, ready_p, now = f.spec, f.probe, f.sent_at
        r.readiness_successes = r.readiness_successes + 1 if res.ok else 0
        period = ready_p.period_s if r.readiness_successes else STARTING_PROBE_S
        self._schedule(r, Role.READINESS, self.clock.monotonic() + min(ready_p.period_s, period))
        if not res.timed_out:
            r.unanswered_since = None  # it answered: its event loop runs
        if res.ok and r.readiness_successes >= ready_p.success_threshold:
            self.act.became_ready(r, "" if ready_p.enabled else READINESS_OFF)
            self._sync(r)  # its liveness probe is due now too
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


def _tally(ok: bool, failures: int, successes: int) -> tuple[int, int]:
    """(failures, successes) in a row after one answer: each answer ends the other run (as
    Kubernetes counts `failureThreshold` and `successThreshold`)."""
    return (0, successes + 1) if ok else (failures + 1, 0)
