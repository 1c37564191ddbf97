"""The autoscaling policy on fake time: every scenario is a loop of plain calls.

`Sim` plays the controller's glue: one sample per tick, ready replicas follow the desired
count (after `ready_lag` seconds), and every change of the count is recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from podium.control.scale_policy import (
    Decision,
    Sample,
    ScalerState,
    ScalingContext,
    decide,
    rule_key,
)
from podium.core.scaling_spec import ScalingRule, ScalingSpec


def spec(**kw: Any) -> ScalingSpec:
    base: dict[str, Any] = {"min_replicas": 1, "max_replicas": 10, "target_concurrency": 4}
    base.update(kw)
    return ScalingSpec.model_validate(base)


@dataclass
class Sim:
    spec: ScalingSpec
    desired: int = 1
    t: float = 0.0
    ready_lag: float = 0.0  # seconds before a new replica counts as ready
    state: ScalerState = field(default_factory=ScalerState)
    samples: deque[Sample] = field(default_factory=deque)
    changes: list[tuple[float, int, int, str]] = field(default_factory=list)
    history: list[tuple[float, int]] = field(default_factory=list)  # (t, desired)
    _ready: list[tuple[float, int]] = field(default_factory=list)  # (since, count)

    def __post_init__(self) -> None:
        self._ready = [(self.t, self.desired)]

    @property
    def ready(self) -> int:
        current = 0
        for since, count in self._ready:
            if since <= self.t:
                current = count
        return current

    def step(
        self,
        in_flight: int = 0,
        held: int = 0,
        rps: float = 0.0,
        metrics: dict[str, float] | None = None,
        *,
        dt: float = 1.0,
        ready: int | None = None,
        starting: int = 0,
    ) -> Decision:
        self.t += dt
        self.samples.append(Sample(self.t, in_flight, held, rps, metrics or {}))
        while self.samples and self.samples[0].t < self.t - self.spec.stable_window - 5:
            self.samples.popleft()
        ctx = ScalingContext(
            now=self.t,
            spec=self.spec,
            desired=self.desired,
            ready=self.ready if ready is None else ready,
            samples=tuple(self.samples),
            starting=starting,
        )
        d = decide(ctx, self.state)
        self.state = d.state
        if d.changed:
            assert d.reason is not None
            self.changes.append((self.t, self.desired, d.desired, d.reason))
            self.desired = d.desired
            # Scaling down takes effect at once; new replicas become ready after the lag.
            lag = self.ready_lag if d.desired > self.ready else 0.0
            self._ready.append((self.t + lag, d.desired))
        else:
            assert d.desired == self.desired
        self.history.append((self.t, self.desired))
        return d

    def run(self, seconds: float, load: Callable[[float], dict[str, Any]]) -> None:
        end = self.t + seconds
        while self.t < end - 1e-9:
            self.step(**load(self.t + 1))

    def desired_at(self, t: float) -> int:
        return [d for at, d in self.history if at <= t][-1]


def steady(**load: Any) -> Callable[[float], dict[str, Any]]:
    return lambda t: load


# ---------------------------------------------------------------------- load shapes


def test_step_load_scales_up_at_once_to_the_right_count_and_stays() -> None:
    sim = Sim(spec())
    sim.run(60, steady())
    assert sim.changes == []
    sim.run(120, steady(in_flight=20))
    assert sim.desired == 5  # 20 in flight / 4 per replica
    first_change = sim.changes[0][0]
    assert first_change - 60 <= 3  # panic: within the panic window, not the stable one
    assert all(new > old for _, old, new, _ in sim.changes)  # never down, never past 5
    assert max(new for _, _, new, _ in sim.changes) == 5


def test_short_spike_panics_up_then_holds_for_a_stable_window() -> None:
    sim = Sim(spec(stable_window=30, scale_down_delay=30, stability_period=10))
    sim.run(60, steady())
    sim.step(in_flight=40)  # one second of 40 in flight at t=61
    assert sim.desired > 1
    _, old, peak, reason = sim.changes[0]
    assert (old, peak) == (1, 4)
    assert reason.startswith("scaled 1→4: panic: ")
    sim.run(200, steady())
    # Panic lasts a stable window (until 91), then the need must stay low 30 s more.
    assert sim.desired_at(120) == peak
    assert sim.desired_at(121) == 1
    assert len(sim.changes) == 2
    assert "in flight over 30s" in sim.changes[1][3]


def test_slow_ramp_scales_up_step_by_step_and_never_down() -> None:
    sim = Sim(spec(), ready_lag=5)
    sim.run(600, lambda t: {"in_flight": round(36 * t / 600)})
    sim.run(60, steady(in_flight=36))
    counts = [d for _, d in sim.history]
    assert counts == sorted(counts)  # monotone: no down while ramping
    assert sim.desired == 9
    # It follows the ramp: never far behind the 30 s average.
    for t, d in sim.history:
        assert d >= min(9, (36 * (t - 30) / 600) / 4) - 1


def test_flapping_load_settles_with_few_changes() -> None:
    sim = Sim(spec(), ready_lag=2)
    sim.run(600, lambda t: {"in_flight": 12 if int(t) % 10 < 5 else 0})
    assert len(sim.changes) <= 3
    last = sim.changes[-1][0]
    assert last < 120  # settled within two minutes, then nothing
    assert sim.desired == 2  # 6 in flight on average / 4 per replica


def test_load_oscillating_around_a_boundary_does_not_flap() -> None:
    sim = Sim(spec(stable_window=10, panic_window=2, scale_down_delay=30), desired=2)
    sim.run(300, lambda t: {"in_flight": 9 if int(t) % 20 < 10 else 7})  # need 3, then 2
    assert [c[1:3] for c in sim.changes] == [(2, 3)]  # up once, then held


# ---------------------------------------------------------------------- zero


def test_idle_goes_to_zero_at_exactly_scale_to_zero_after() -> None:
    sim = Sim(spec(min_replicas=0, scale_to_zero_after=300))
    sim.run(100, steady(in_flight=1))  # last request seen at t=100
    sim.run(299, steady())
    assert sim.desired == 1  # t=399: idle for 299 s
    d = sim.step()  # t=400
    assert d.desired == 0
    assert d.reason == "scaled 1→0: idle for 300s"
    assert d.data["idle_s"] == 300
    assert d.data["signal"] == "idle"


def test_arriving_requests_count_as_activity() -> None:
    sim = Sim(spec(min_replicas=0, scale_to_zero_after=10))
    sim.run(30, steady(rps=0.5))  # short requests, never seen in flight
    assert sim.desired == 1


def test_min_replicas_above_zero_never_goes_to_zero() -> None:
    sim = Sim(spec(min_replicas=1, scale_to_zero_after=1))
    sim.run(600, steady())
    assert sim.changes == []


def test_a_starting_replica_is_not_idle() -> None:
    sim = Sim(spec(min_replicas=0, scale_to_zero_after=5), desired=1)
    for _ in range(20):
        sim.step(ready=0, starting=1)  # a slow model still loading
    assert sim.desired == 1
    sim.run(4, steady())
    assert sim.desired == 1
    sim.step()
    assert sim.desired == 0


def test_held_requests_at_zero_scale_up_at_once() -> None:
    sim = Sim(spec(min_replicas=0, scale_up_delay=60), desired=0)
    sim.run(10, steady())
    d = sim.step(held=5)
    assert d.desired == 2  # ceil(5 held / 4 per replica), no window, no delay
    assert d.reason == "scaled 0→2: 5 request(s) held with no ready replica, target 4 per replica"
    assert d.data["held"] == 5


def test_one_held_request_brings_one_replica_within_max() -> None:
    one = Sim(spec(min_replicas=0), desired=0)
    assert one.step(held=1).desired == 1
    capped = Sim(spec(min_replicas=0, max_replicas=3, target_concurrency=1), desired=0)
    assert capped.step(held=100).desired == 3


def test_wake_is_not_undone_before_the_idle_time() -> None:
    sim = Sim(spec(min_replicas=0, scale_to_zero_after=20), desired=0)
    sim.run(100, steady())
    sim.desired = 1  # someone else (wake) set the count; the next pass sees it (t=101)
    sim.run(20, steady())
    assert sim.desired == 1
    sim.step()
    assert sim.desired == 0


def test_gone_to_zero_stays_there_while_the_window_remembers_the_traffic() -> None:
    """The stable window still averages the requests from before the endpoint went to zero;
    that memory must not bring it back up (it did: 0→1→0→… with no traffic at all)."""
    sim = Sim(spec(min_replicas=0, scale_to_zero_after=1, stable_window=30), desired=0)
    sim.step(held=1)  # a request wakes it
    assert sim.desired == 1
    sim.run(2, steady(in_flight=1))
    sim.run(30, steady())
    assert [(before, after) for _, before, after, _ in sim.changes] == [(0, 1), (1, 0)]
    assert sim.step(held=1).desired == 1  # the next request still wakes it at once


def test_at_zero_nothing_happens_without_load() -> None:
    sim = Sim(spec(min_replicas=0), desired=0)
    sim.run(600, steady())
    assert sim.changes == []


# ---------------------------------------------------------------------- delays and bounds


def test_scale_up_waits_for_scale_up_delay() -> None:
    sim = Sim(spec(stable_window=10, panic_window=1, scale_up_delay=20), desired=2)
    sim.run(30, steady(in_flight=12))  # need 3, below panic (2x of 2 replicas = 16)
    ups = [c for c in sim.changes if c[2] > c[1]]
    assert len(ups) == 1
    t, _, new, reason = ups[0]
    assert new == 3
    assert reason == "scaled 2→3: 12 in flight over 10s, target 4 per replica"
    assert 20 <= t <= 22


def test_scale_down_waits_for_delay_and_stability_period() -> None:
    sim = Sim(spec(stable_window=5, panic_window=1, scale_down_delay=0, stability_period=60))
    sim.run(20, steady(in_flight=10))  # up to 3 (stable, no panic after the first step)
    up_at = sim.changes[-1][0]
    sim.run(100, steady(in_flight=1))
    downs = [c for c in sim.changes if c[2] < c[1]]
    assert downs and downs[0][0] >= up_at + 60
    assert sim.desired == 1


def test_max_replicas_caps_and_min_replicas_floors() -> None:
    sim = Sim(spec(max_replicas=4))
    sim.run(60, steady(in_flight=100))
    assert sim.desired == 4
    low = Sim(spec(min_replicas=2, max_replicas=4, scale_down_delay=0, stability_period=0))
    low.desired = 3
    low.run(120, steady())
    assert low.desired == 2


def test_bounds_changed_by_the_user_clamp_at_once() -> None:
    sim = Sim(spec(max_replicas=10), desired=5)
    sim.spec = spec(max_replicas=3)
    d = sim.step(in_flight=100)
    assert (d.desired, d.reason) == (3, "scaled 5→3: max_replicas is 3")
    # (0 under a minimum stays: it is parked by the user, test_scale_parked.py; the API
    # clamps the count itself when a spec change raises the minimum)
    up = Sim(spec(min_replicas=0), desired=1)
    up.spec = spec(min_replicas=2)
    assert up.step().reason == "scaled 1→2: min_replicas is 2"


# ---------------------------------------------------------------------- other signals


def test_target_rps_scales_on_request_rate() -> None:
    sim = Sim(spec(target_rps=10, target_concurrency=100))
    sim.run(60, steady(rps=35, in_flight=1))
    assert sim.desired == 4
    assert any("35 requests/s" in reason for *_, reason in sim.changes)


def test_cpu_rule_keeps_the_average_near_target() -> None:
    rule = ScalingRule(metric="cpu", target=60)
    sim = Sim(spec(rules=[rule], stable_window=10, panic_window=1), desired=2)
    sim.run(30, steady(metrics={"cpu": 180.0}))  # two replicas at 90 %
    assert sim.desired == 3
    assert "cpu 90% per replica on 2" in sim.changes[0][3]
    assert sim.changes[0][3].endswith("target 60%")


def test_queue_depth_and_custom_gauge_rules() -> None:
    rules = [
        ScalingRule(metric="queue_depth", target=2),
        ScalingRule(metric="custom", target=100, gauge="tokens_waiting"),
    ]
    assert [rule_key(r) for r in rules] == ["queue_depth", "custom:tokens_waiting"]
    sim = Sim(spec(rules=rules, stable_window=10, panic_window=1), desired=1)
    sim.run(30, steady(metrics={"queue_depth": 3.0, "custom:tokens_waiting": 450.0}))
    assert sim.desired == 5  # 450 / 100 beats 3 / 2
    assert "gauge tokens_waiting" in sim.changes[-1][3]
    assert sim.changes[-1][1:3] == (1, 5)


def test_rules_need_a_ready_replica_to_say_anything() -> None:
    rule = ScalingRule(metric="cpu", target=50)
    sim = Sim(spec(rules=[rule], min_replicas=0), desired=0)
    sim.run(60, steady(metrics={"cpu": 500.0}))
    assert sim.changes == []


def test_decision_data_carries_the_figures() -> None:
    sim = Sim(spec(stable_window=10, panic_window=1))
    sim.run(10, steady(in_flight=2))
    d = sim.step(in_flight=40)
    assert d.changed
    assert d.data["from"] == 1 and d.data["to"] == d.desired
    assert d.data["signal"] == "panic_concurrency"
    assert d.data["panic_concurrency"] == 40.0
    assert d.data["ready"] == 1


def test_scale_down_goes_to_the_highest_need_of_the_delay_window() -> None:
    sim = Sim(
        spec(stable_window=1, panic_window=1, scale_down_delay=10, stability_period=0), desired=3
    )
    sim.run(10, steady(in_flight=6))  # need 2 for 10 s
    assert sim.changes == []
    d = sim.step()  # the load is gone, but 2 were needed a moment ago
    assert d.reason == (
        "scaled 3→2: 0 in flight over 1s, target 4 per replica; 2 needed within the last 10s"
    )
    sim.run(20, steady())
    assert sim.desired == 1
