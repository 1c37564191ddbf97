"""Exit accounting: what a replica's end means for its endpoint.

One job: turn an ended (or hung and killed) replica into its event, a restart with backoff,
or the endpoint's failure. Two streaks are kept per endpoint (`EndpointMemory`):

- crashes before ready (`crash_streak`): `crash_loop_threshold` in a row fail the endpoint;
  a replica that stays ready for the settle time after the last of them ends the streak
  (one that was ready before proves nothing about the replica that now crashes at start);
- crashes and hangs while serving (`serving_crashes`): a replica of the target revision
  that had become ready crashed, ran out of memory or hung. They fail the endpoint only
  when `crash_loop_threshold` of them come with no successful request *of that revision*
  in between (the gateway counts successes per revision), so a poison input among good
  traffic never fails it, and an old revision's successes during a rollout cannot hide a
  new revision that fails every request.

A replica the controller was already stopping or draining that exits (scale-down, the end
of a rollout) is not a crash, whatever it exited with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from podium.backends.base import Backend, ObservedReplica
from podium.control.journal import Journal
from podium.control.state import ControllerState
from podium.control.tracked import EndpointMemory, TrackedReplica
from podium.core.clock import Clock
from podium.core.phases import EventKind, ExitReason, ReplicaState
from podium.core.routing import GatewayView
from podium.core.settings import ControlSettings

log = logging.getLogger("podium.control")

_EXIT_EVENT = {
    ExitReason.OOM: (EventKind.REPLICA_OOM, "ran out of memory"),
    ExitReason.UNHEALTHY: (EventKind.REPLICA_UNHEALTHY, "was restarted: unhealthy"),
    ExitReason.HUNG: (EventKind.REPLICA_HUNG, "was restarted"),
    ExitReason.LOAD_FAILED: (EventKind.REPLICA_CRASHED, "failed to load its model"),
    ExitReason.CRASHED: (EventKind.REPLICA_CRASHED, "crashed"),
    ExitReason.LOST: (EventKind.REPLICA_CRASHED, "was lost"),
}

EVENT_LOG_LINES = 20  # last log lines a failure event carries
EVENT_LINE_CHARS = 500  # each cut to this many characters


def backoff_s(cfg: ControlSettings, streak: int) -> float:
    """The delay before the next start after `streak` crashes in a row."""
    return float(min(cfg.restart_backoff_s * 2 ** (max(streak, 1) - 1), cfg.restart_backoff_max_s))


def settle_s(cfg: ControlSettings) -> float:
    """How long a replica stays ready before it counts as healthy (ends a crash streak)."""
    return max(10.0, cfg.restart_backoff_max_s)


class Exits:
    """The exit accounting of one controller (the `Actuator` delegates to it)."""

    def __init__(
        self,
        cfg: ControlSettings,
        clock: Clock,
        backend: Backend,
        state: ControllerState,
        journal: Journal,
        gateway: GatewayView | None,
        wake: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.backend = backend
        self.state = state
        self.journal = journal
        self.gateway = gateway
        self.wake = wake

    def fail(self, name: str, mem: EndpointMemory, reason: str) -> None:
        """The target revision cannot run: the next pass fails the endpoint (the reason is
        kept in the endpoint's persisted memory too: masked like everything written)."""
        self.state.fail(name, mem, self.journal.secrets.text(reason))
        self.wake(name)

    def hung(self, r: TrackedReplica, detail: str, figures: dict[str, float]) -> None:
        """Account for a hung replica the caller is about to kill: it counts as a crash
        while serving at once (so its replacement starts in this pass as a restart, after
        the backoff), and its exit is recorded as `replica_hung` with `figures`."""
        r.kill_figures = dict(figures)
        if self.state.is_target(r):
            self.serving_crash(r, self.state.memory_of(r.endpoint), detail)
            r.counted = True

    async def replica_exited(self, obs: ObservedReplica) -> None:
        self.state.decided.pop(obs.replica_id, None)
        r = self.state.replicas.pop(obs.replica_id, None)
        if r is None:
            return
        self.journal.forget(r.replica_id)
        # Already on its way out (scale-down, a rollout's end): never a crash of the endpoint.
        leaving = r.kill_detail is None and r.state in (
            ReplicaState.STOPPING,
            ReplicaState.DRAINING,
        )
        if r.kill_detail is None and (
            obs.exit_reason is ExitReason.STOPPED
            or (r.state is ReplicaState.STOPPING and obs.exit_reason is not ExitReason.OOM)
        ):
            self.journal.event(
                r.endpoint,
                EventKind.REPLICA_STOPPED,
                f"replica {r.replica_id} stopped",
                replica_id=r.replica_id,
                revision=r.revision,
                exit_code=obs.exit_code,
            )
            return
        reason = obs.exit_reason or ExitReason.CRASHED
        if r.was_ready and reason is ExitReason.LOAD_FAILED:
            reason = ExitReason.CRASHED  # it had loaded: whatever it wrote, this is a crash
        kind, verb = _EXIT_EVENT.get(reason, _EXIT_EVENT[ExitReason.CRASHED])
        detail = (obs.error if reason is ExitReason.OOM else None) or r.kill_detail
        detail = detail or obs.error or f"exit code {obs.exit_code}"
        tail = await self.log_tail(r.replica_id)
        shown = "\nlast log lines:\n" + "\n".join(tail) if tail else ""
        self.journal.event(
            r.endpoint,
            kind,
            f"replica {r.replica_id} {verb}: {detail}{shown}",
            replica_id=r.replica_id,
            revision=r.revision,
            exit_code=obs.exit_code,
            reason=reason.value,
            **(r.kill_figures if reason is ExitReason.HUNG else {}),
            log_tail=tail,
        )
        if leaving or r.counted or not self.state.is_target(r):
            return  # stopped anyway (an OOM on the way out), counted at the kill, or an
            # old revision's replica that the rollout replaces anyway
        mem = self.state.memory_of(r.endpoint)
        if r.was_ready:
            self.serving_crash(r, mem, detail)
        elif reason is ExitReason.LOAD_FAILED:
            self.fail(r.endpoint, mem, f"revision {r.revision} failed to load: {detail}")
        else:
            self.crashed(r.endpoint, r.revision, mem, detail)

    async def log_tail(self, replica_id: str) -> list[str]:
        """The replica's last log lines, each cut short, for the event that says why it
        ended. Read in a worker thread (`ReplicaLogs` calls block: a file here, a remote
        node's log for another backend), never on the controller's loop."""
        try:
            lines = await asyncio.to_thread(self.backend.logs, replica_id, EVENT_LOG_LINES)
        except Exception:  # a log that cannot be read must not lose the event
            log.warning("could not read the log of %s", replica_id, exc_info=True)
            return []
        return [line[:EVENT_LINE_CHARS] for line in lines[-EVENT_LOG_LINES:]]

    def crashed(self, name: str, revision: int, mem: EndpointMemory, detail: str) -> None:
        """A replica crashed before it became ready (or could not be started)."""
        cfg = self.cfg
        now = self.clock.monotonic()
        mem.crash_streak += 1
        mem.crashed_at = now
        mem.pending_restarts += 1
        mem.backoff_until = now + backoff_s(cfg, mem.crash_streak)
        if mem.crash_streak >= cfg.crash_loop_threshold and not self._serving(name, revision):
            self.fail(
                name,
                mem,
                f"crash loop: revision {revision} crashed {mem.crash_streak} times in a row; "
                f"last: {detail}",
            )

    def _serving(self, name: str, revision: int) -> bool:
        """A replica of this revision is ready: failing the endpoint would stop it, so a
        sibling's crash loop only goes on at the capped backoff (each crash an event)."""
        return any(
            r.endpoint == name and r.revision == revision and r.state is ReplicaState.READY
            for r in self.state.replicas.values()
        )

    def serving_crash(self, r: TrackedReplica, mem: EndpointMemory, detail: str) -> None:
        """A replica of the target revision that had become ready crashed or hung.

        It is restarted with backoff. `crash_loop_threshold` of these with no successful
        request (2xx/3xx, as the gateway counts them) of the revision in between fail the
        endpoint. Without a gateway in this process, a replica that stayed ready for the
        settle time counts as having served.
        """
        cfg = self.cfg
        now = self.clock.monotonic()
        succeeded = self._succeeded(r.endpoint, r.revision)
        if succeeded is not None:
            same = mem.serving_revision == r.revision
            before = mem.succeeded_at_crash if same else None
            served = before is None or succeeded > before
        else:
            served = r.ready_at is not None and now - r.ready_at >= settle_s(cfg)
        mem.serving_crashes = 1 if served else mem.serving_crashes + 1
        mem.succeeded_at_crash, mem.serving_revision = succeeded, r.revision
        mem.pending_restarts += 1
        streak = mem.serving_crashes
        mem.backoff_until = max(mem.backoff_until, now + backoff_s(cfg, streak))
        if streak >= cfg.crash_loop_threshold:
            self.fail(
                r.endpoint,
                mem,
                f"crash loop: revision {r.revision} crashed or hung {streak} times while "
                f"serving, with no successful request in between; last: {detail}",
            )

    def _succeeded(self, endpoint: str, revision: int) -> int | None:
        """Successful requests of this revision the gateway has seen (None: no gateway)."""
        gateway = self.gateway
        if gateway is None:
            return None
        load = gateway.load_snapshot().get(endpoint)
        return 0 if load is None else load.succeeded_by_revision.get(revision, 0)
