"""The task queue as an input of the autoscaling policy (issue 13), on fake time.

Pending + running tasks over a replica's task slots (`slot_share x max_concurrency`) is one
more stable-window signal; pending tasks with no ready replica bring the endpoint up at once
(like held requests); queued or running tasks are activity, so the idle rule never takes an
endpoint to zero under them; the queue never panics. Every branch is a plain call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podium.control.scale_policy import Decision, Sample, ScalerState, ScalingContext, decide
from tests.unit.control.test_scale_policy_sim import Sim, spec

S0 = ScalerState()


def ctx(
    *,
    desired: int,
    ready: int,
    samples: tuple[Sample, ...],
    task_slots: float = 4.0,
    **scaling: Any,
) -> ScalingContext:
    return ScalingContext(
        now=samples[-1].t,
        spec=spec(**scaling),
        desired=desired,
        ready=ready,
        samples=samples,
        task_slots=task_slots,
    )


class QueueSim(Sim):
    """`Sim` whose samples carry the queue: one sample per tick, `task_slots` per replica."""

    task_slots: float = 4.0

    def tick(
        self, pending: int = 0, running: int = 0, oldest_s: float = 0.0, **kw: Any
    ) -> Decision:
        self.t += kw.pop("dt", 1.0)
        self.samples.append(Sample(self.t, pending=pending, running=running, oldest_s=oldest_s))
        ctx = ScalingContext(
            now=self.t,
            spec=self.spec,
            desired=self.desired,
            ready=kw.get("ready", self.ready),
            samples=tuple(self.samples),
            task_slots=self.task_slots,
        )
        d = decide(ctx, self.state)
        self.state = d.state
        if d.changed:
            assert d.reason is not None
            self.changes.append((self.t, self.desired, d.desired, d.reason))
            self.desired = d.desired
            self._ready.append((self.t, d.desired))
        return d

    def ticks(self, n: int, load: Callable[[int], dict[str, Any]]) -> None:
        for i in range(n):
            self.tick(**load(i))


# ---------------------------------------------------------------------- cold start


def test_queued_tasks_at_zero_come_up_at_once_to_cover_the_queue() -> None:
    s = (Sample(10.0, pending=10, oldest_s=3.21),)
    d = decide(ctx(desired=0, ready=0, samples=s, min_replicas=0, max_replicas=8), S0)
    assert d.desired == 3  # ceil(10 tasks / 4 task slots per replica)
    assert d.reason == (
        "scaled 0→3: 10 queued tasks (oldest 3.2 s) with no ready replica, "
        "4 task slot(s) per replica"
    )
    assert d.data["signal"] == "queue"
    assert (d.data["queued"], d.data["running_tasks"], d.data["oldest_queued_s"]) == (
        10,
        0,
        3.21,
    )
    assert d.data["task_slots"] == 4.0


def test_one_queued_task_at_zero_asks_for_one_replica() -> None:
    """With `max_concurrency: 1` (a GPU model) and a slot share of 0.5 a replica has half a
    task slot on paper, but the dispatcher runs at least one task per endpoint: the
    controller gives the policy at least one slot per replica (`Autoscaling`), so one task
    asks for one replica (it asked for two)."""
    s = (Sample(1.0, pending=1, oldest_s=0.04),)
    d = decide(ctx(desired=0, ready=0, samples=s, min_replicas=0, task_slots=1.0), S0)
    assert d.desired == 1
    assert d.reason == (
        "scaled 0→1: 1 queued task (oldest 0.0 s) with no ready replica, 1 task slot(s) per replica"
    )


def test_a_cold_start_from_the_queue_stops_at_max_replicas() -> None:
    s = (Sample(1.0, pending=500, oldest_s=1.0),)
    d = decide(ctx(desired=0, ready=0, samples=s, min_replicas=0, max_replicas=5), S0)
    assert (d.desired, d.data["signal"]) == (5, "queue")


def test_a_cold_start_counts_running_tasks_with_the_pending_ones() -> None:
    s = (Sample(1.0, pending=3, running=6, oldest_s=2.0),)
    d = decide(ctx(desired=1, ready=0, samples=s, min_replicas=0, max_replicas=8), S0)
    assert d.desired == 3  # ceil(9 / 4): one replica is already starting
    assert d.reason == (
        "scaled 1→3: 3 queued tasks (oldest 2.0 s), 6 running with no ready replica, "
        "4 task slot(s) per replica"
    )


def test_replicas_already_starting_for_the_queue_are_not_asked_for_again() -> None:
    s = (Sample(1.0, pending=4, oldest_s=2.0),)
    d = decide(ctx(desired=1, ready=0, samples=s, min_replicas=0, max_replicas=8), S0)
    assert (d.desired, d.changed) == (1, False)  # ceil(4 / 4) = 1: coming up already


def test_held_requests_decide_first_when_both_wait_at_zero() -> None:
    s = (Sample(1.0, held=9, pending=2, oldest_s=1.0),)
    d = decide(ctx(desired=0, ready=0, samples=s, min_replicas=0, max_replicas=8), S0)
    assert (d.desired, d.data["signal"]) == (3, "held")  # ceil(9 held / 4)


def test_at_zero_with_an_empty_queue_nothing_comes_up() -> None:
    sim = QueueSim(spec(min_replicas=0), desired=0)
    sim.ticks(10, lambda i: {})
    assert sim.changes == []
    assert "queued" not in sim.tick().data  # no queue figures without tasks


# ---------------------------------------------------------------------- stable mode


def test_a_growing_queue_scales_up_over_the_stable_window_and_names_the_queue() -> None:
    sim = QueueSim(spec(max_replicas=10, stable_window=10, panic_window=2))
    sim.ticks(10, lambda i: {"pending": 20, "running": 4, "oldest_s": 3.25})
    # ceil(24 / 4): the queue's share of the slots covers it (a lone first sample counts
    # as it is), and the count then holds while the queue does.
    assert sim.changes == [
        (
            1.0,
            1,
            6,
            "scaled 1→6: 20 queued tasks (oldest 3.2 s), 4 running, "
            "24 queued or running over 10s, 4 task slot(s) per replica",
        )
    ]


def test_the_queue_need_stops_at_max_replicas() -> None:
    sim = QueueSim(spec(max_replicas=3, stable_window=4, panic_window=1))
    sim.ticks(8, lambda i: {"pending": 400, "running": 4, "oldest_s": 1.0})
    assert sim.desired == 3
    assert all(new <= 3 for _, _, new, _ in sim.changes)


def test_a_burst_of_tasks_never_panics() -> None:
    """A job puts a thousand lines in the queue at once: no scale-up beyond what the
    stable window's average asks for (a request burst that size would panic)."""
    sim = QueueSim(spec(max_replicas=50, stable_window=30, panic_window=3))
    sim.ticks(29, lambda i: {})
    d = sim.tick(pending=1000, oldest_s=0.5)
    assert d.data["panic_need"] == 0
    assert sim.desired == 9  # ceil(1000 x 1/30 of the window / 4 slots) = ceil(8.33)
    assert d.data["signal"] == "queue"
    assert sim.state.panic_until is None


def test_a_drained_queue_scales_down_after_the_delay_then_to_zero_when_idle() -> None:
    sim = QueueSim(
        spec(
            min_replicas=0,
            max_replicas=4,
            stable_window=4,
            panic_window=1,
            scale_down_delay=5,
            stability_period=0,
            scale_to_zero_after=20,
        ),
        desired=0,
    )
    sim.tick(pending=12, oldest_s=0.1)  # t=1: cold start to ceil(12 / 4)
    assert sim.desired == 3
    # t=2..11: draining, 8 queued down to none, 4 running all along
    sim.ticks(10, lambda i: {"pending": 8 - min(i, 8), "running": 4})
    assert sim.desired == 3  # the need fell to 2 at t=6: down only after scale_down_delay
    sim.ticks(30, lambda i: {})  # t=12..41: empty and idle
    assert sim.changes[1:] == [
        (
            13.0,
            3,
            2,
            "scaled 3→2: 0 queued tasks, 2 queued or running over 4s, "
            "4 task slot(s) per replica; 2 needed within the last 5.0s",
        ),
        (19.0, 2, 1, "scaled 2→1: 0 in flight over 4s, target 4 per replica"),  # floor 1
        (31.0, 1, 0, "scaled 1→0: idle for 20s"),  # 20 s after the last running task
    ]


def test_running_tasks_alone_keep_an_endpoint_from_going_to_zero() -> None:
    sim = QueueSim(spec(min_replicas=0, scale_to_zero_after=5, stable_window=4, panic_window=1))
    sim.ticks(60, lambda i: {"running": 1})  # one long task, nothing queued, no request
    assert sim.changes == []
    assert sim.desired == 1
    d = sim.tick(running=1)
    assert (d.data["idle_s"], d.data["running_tasks"], d.data["queued"]) == (0.0, 1, 0)


def test_pending_tasks_alone_keep_an_endpoint_from_going_to_zero() -> None:
    sim = QueueSim(spec(min_replicas=0, scale_to_zero_after=5, stable_window=4, panic_window=1))
    sim.task_slots = 100.0  # the queue needs one replica
    sim.ticks(60, lambda i: {"pending": 3, "oldest_s": float(i)})
    assert sim.changes == []
