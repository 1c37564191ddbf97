"""The autoscaling policy at its edges: exact thresholds and delays, what restarts a delay,
the figures a `scaled` event carries, and signals that are missing.

The main scenarios are in test_scale_policy_sim.py; these pin what docs/autoscaling.md promises at
the boundaries (panic at 2x, up at once with no delay, down exactly `scale_down_delay` after
the need fell, the stability period counted from the last change), on the same fake-time
simulator.
"""

from __future__ import annotations

from podium.control.scale_policy import Sample, ScalerState, ScalingContext, decide
from podium.core.scaling_spec import ScalingRule
from tests.unit.control.test_scale_policy_sim import Sim, spec, steady

S0 = ScalerState()


def downs(sim: Sim) -> list[tuple[float, int, int]]:
    return [(t, old, new) for t, old, new, _ in sim.changes if new < old]


def ups(sim: Sim) -> list[tuple[float, int, int]]:
    return [(t, old, new) for t, old, new, _ in sim.changes if new > old]


# ---------------------------------------------------------------------- the event's figures


def test_a_scaled_event_carries_every_documented_figure_rounded_to_three_decimals() -> None:
    sim = Sim(spec(stable_window=3, panic_window=1, target_concurrency=3, target_rps=100))
    sim.step(in_flight=0, rps=0.5)  # t=1
    sim.step(in_flight=0, rps=0.5)  # t=2
    sim.step(in_flight=0, rps=0.5)  # t=3
    d = sim.step(in_flight=10, rps=1.0)  # t=4: a burst of 10 on one replica
    assert d.reason == (
        "scaled 1→4: panic: 10 in flight over 1s, target 3 per replica "
        "(at least 2x the capacity of 1 ready)"
    )
    assert d.data == {
        "from": 1,
        "to": 4,
        "signal": "panic_concurrency",
        "ready": 1,
        "in_flight": 10,
        "held": 0,
        "idle_s": 0.0,
        "stable_window_s": 3.0,
        "concurrency": 3.333,  # (0 + 0 + 10) / 3 over (1, 4]
        "rps": 0.667,
        "panic_concurrency": 10.0,
        "panic_rps": 1.0,
        "need": 2,  # ceil(3.333 / 3)
        "panic_need": 4,  # ceil(10 / 3)
    }


def test_a_clamp_to_new_bounds_says_bounds_and_how_long_it_was_idle() -> None:
    sim = Sim(spec(max_replicas=10), desired=3)
    sim.step(in_flight=1)  # t=1: last activity
    sim.step(dt=2.34567)  # idle since
    sim.spec = spec(max_replicas=2)
    d = sim.step()  # t=4.34567
    assert d.reason == "scaled 3→2: max_replicas is 2"
    assert (d.data["signal"], d.data["from"], d.data["to"]) == ("bounds", 3, 2)
    assert d.data["idle_s"] == 3.346
    # (0 under a minimum is not clamped: it is parked by the user, test_scale_parked.py)
    up = Sim(spec(min_replicas=0), desired=1)
    up.spec = spec(min_replicas=2)
    d = up.step()
    assert (d.reason, d.data["signal"]) == ("scaled 1→2: min_replicas is 2", "bounds")


def test_scaling_to_zero_records_the_idle_time() -> None:
    sim = Sim(spec(min_replicas=0, scale_to_zero_after=10))
    sim.step(in_flight=1, dt=0.5)  # t=0.5: last activity
    sim.run(9, steady())  # idle 9 s at t=9.5
    assert sim.desired == 1
    d = sim.step(dt=1.12345)  # t=10.62345: idle for 10.12345 s
    assert (d.desired, d.reason) == (0, "scaled 1→0: idle for 10s")
    assert (d.data["signal"], d.data["idle_s"]) == ("idle", 10.123)


def test_a_rule_that_scales_names_its_key_as_the_signal() -> None:
    rule = ScalingRule(metric="custom", target=100, gauge="tokens_waiting")
    sim = Sim(spec(rules=[rule], stable_window=10, panic_window=1), desired=1)
    d = sim.step(metrics={"custom:tokens_waiting": 250.0})
    assert d.reason == "scaled 1→3: gauge tokens_waiting 250 per replica on 1 over 10s, target 100"
    assert (d.data["signal"], d.data["custom:tokens_waiting"]) == ("custom:tokens_waiting", 250.0)


def test_rule_messages_give_the_metric_its_unit() -> None:
    """Memory in %, latency in ms, a queue depth in requests (no unit)."""
    cases = {
        "memory": ("memory 90% per replica on 1 over 10s, target 60%", 90.0),
        "p95_latency_ms": ("p95_latency_ms 300ms per replica on 1 over 10s, target 100ms", 300),
        "queue_depth": ("queue_depth 6 per replica on 1 over 10s, target 2", 6.0),
    }
    targets = {"memory": 60.0, "p95_latency_ms": 100.0, "queue_depth": 2.0}
    for metric, (text, figure) in cases.items():
        rule = ScalingRule(metric=metric, target=targets[metric])  # type: ignore[arg-type]
        sim = Sim(spec(rules=[rule], stable_window=10, panic_window=1), desired=1)
        sim.run(3, steady(metrics={metric: float(figure)}))
        assert sim.changes, metric
        _, _, _, reason = sim.changes[0]
        assert reason.endswith(text), reason


def test_a_stable_scale_up_names_its_signal() -> None:
    sim = Sim(spec(stable_window=1, panic_window=1), desired=2)
    d = sim.step(in_flight=12)  # need 3, below panic (2x of 2 replicas = 16)
    assert (d.desired, d.data["signal"], d.data["to"]) == (3, "concurrency", 3)


def test_a_decision_that_changes_nothing_still_shows_its_figures() -> None:
    sim = Sim(spec(stable_window=1, panic_window=1, scale_up_delay=30), desired=2)
    d = sim.step(in_flight=12)  # need 3, waiting for the delay
    assert not d.changed and d.reason is None and d.desired == 2
    assert (d.data["need"], d.data["from"], d.data["concurrency"]) == (3, 2, 12.0)
    assert "to" not in d.data and "signal" not in d.data


# ---------------------------------------------------------------------- thresholds, delays


def test_panic_starts_at_exactly_twice_the_capacity() -> None:
    """Documented: panic when the panic-window load *reaches* 2x what the ready replicas
    carry. With a long scale-up delay only panic can scale up at once."""
    at = Sim(spec(stable_window=10, panic_window=1, scale_up_delay=60))
    d = at.step(in_flight=8)  # 8 = 2 x (1 ready x 4)
    assert (d.desired, d.data["signal"]) == (2, "panic_concurrency")
    below = Sim(spec(stable_window=10, panic_window=1, scale_up_delay=60))
    assert below.step(in_flight=7).desired == 1


def test_in_panic_the_count_goes_to_the_larger_of_the_stable_and_panic_needs() -> None:
    """Two of three replicas are gone (1 ready); the stable window still asks for 4 while
    the burst of the last second asks for 2 (which is 2x the one ready replica: panic)."""
    s = spec(stable_window=10, panic_window=1, scale_up_delay=60)
    samples = [Sample(float(t), in_flight=15) for t in range(1, 10)] + [Sample(10.0, in_flight=8)]
    ctx = ScalingContext(now=10.0, spec=s, desired=3, ready=1, samples=samples)
    d = decide(ctx, ScalerState(known_desired=3, last_change=0.0, last_active=10.0))
    assert d.data["need"] == 4 and d.data["panic_need"] == 2
    assert d.desired == 4
    assert d.data["signal"] == "panic_concurrency"


def test_with_no_scale_up_delay_the_count_goes_up_in_the_same_pass() -> None:
    sim = Sim(spec(stable_window=1, panic_window=1), desired=2)
    sim.run(5, steady(in_flight=8))
    d = sim.step(in_flight=12)  # t=6: need 3, no panic
    assert d.desired == 3
    assert ups(sim) == [(6.0, 2, 3)]


def test_scale_up_happens_exactly_scale_up_delay_after_the_need_rose() -> None:
    sim = Sim(spec(stable_window=1, panic_window=1, scale_up_delay=5), desired=2)
    sim.run(15, steady(in_flight=12))  # need 3 from t=1
    assert ups(sim) == [(6.0, 2, 3)]


def test_after_a_scale_up_a_further_rise_waits_the_scale_up_delay_again() -> None:
    sim = Sim(spec(stable_window=1, panic_window=1, scale_up_delay=10), desired=2)
    sim.run(11, steady(in_flight=12))  # need 3 from t=1: up at t=11
    sim.run(20, steady(in_flight=20))  # need 5 from t=12 (no panic: 2x of 3 is 24)
    assert ups(sim) == [(11.0, 2, 3), (22.0, 3, 5)]


def test_one_held_request_with_nothing_ready_skips_the_scale_up_delay() -> None:
    sim = Sim(spec(min_replicas=0, scale_up_delay=60), desired=0)
    sim.run(5, steady())
    d = sim.step(held=1)
    assert d.desired == 1
    assert d.data["signal"] == "held"
    assert d.reason == "scaled 0→1: 1 request(s) held with no ready replica, target 4 per replica"


def test_held_requests_do_not_stop_other_signals_from_scaling_further() -> None:
    """One replica is starting (none ready) and holds 4 requests, enough for it alone; the
    request rate asks for five."""
    sim = Sim(spec(stable_window=1, panic_window=1, target_rps=2), desired=1)
    d = sim.step(held=4, rps=10, ready=0, starting=1)
    assert d.desired == 5
    assert d.data["signal"] == "panic_rps"


def test_scale_down_happens_exactly_scale_down_delay_after_the_need_fell() -> None:
    sim = Sim(
        spec(stable_window=1, panic_window=1, scale_down_delay=10, stability_period=0), desired=2
    )
    sim.run(20, steady(in_flight=8))  # need 2 == count until t=20
    sim.run(20, steady(in_flight=4))  # need 1 from t=21
    assert downs(sim) == [(31.0, 2, 1)]
    _, _, _, reason = sim.changes[0]
    assert reason == "scaled 2→1: 4 in flight over 1s, target 4 per replica"  # no "needed within"


def test_a_step_down_names_its_signal() -> None:
    sim = Sim(spec(stable_window=1, panic_window=1, scale_down_delay=0, stability_period=0), 2)
    d = sim.step(in_flight=4)
    assert (d.desired, d.data["signal"], d.data["to"]) == (1, "concurrency", 1)


def test_a_blip_above_the_count_restarts_the_scale_down_delay() -> None:
    sim = Sim(
        spec(
            stable_window=1,
            panic_window=1,
            scale_up_delay=30,
            scale_down_delay=10,
            stability_period=0,
        ),
        desired=3,
    )
    sim.run(5, steady(in_flight=4))  # need 1 from t=1
    sim.step(in_flight=16)  # t=6: need 4, too short to scale up (no panic: 2x of 3 is 24)
    sim.run(20, steady(in_flight=4))  # need 1 again from t=7
    assert sim.changes and downs(sim) == [(17.0, 3, 1)]


def test_a_dip_below_the_count_restarts_the_scale_up_delay() -> None:
    sim = Sim(
        spec(stable_window=1, panic_window=1, scale_up_delay=10, scale_down_delay=60), desired=2
    )
    sim.run(5, steady(in_flight=12))  # need 3 from t=1
    sim.step(in_flight=4)  # t=6: need 1
    sim.run(20, steady(in_flight=12))  # need 3 again from t=7
    assert sim.changes and ups(sim) == [(17.0, 2, 3)]


def test_the_need_back_at_the_count_restarts_the_scale_up_delay() -> None:
    sim = Sim(spec(stable_window=1, panic_window=1, scale_up_delay=10), desired=2)
    sim.run(5, steady(in_flight=12))  # need 3 from t=1
    sim.step(in_flight=8)  # t=6: need 2, the count
    sim.run(20, steady(in_flight=12))  # need 3 again from t=7
    assert sim.changes and ups(sim) == [(17.0, 2, 3)]


def test_the_need_back_at_the_count_restarts_the_scale_down_delay() -> None:
    sim = Sim(
        spec(stable_window=1, panic_window=1, scale_down_delay=10, stability_period=0), desired=2
    )
    sim.run(3, steady(in_flight=4))  # need 1 from t=1
    sim.run(5, steady(in_flight=8))  # need 2, the count, t=4..8
    sim.run(20, steady(in_flight=4))  # need 1 again from t=9
    assert sim.changes and downs(sim) == [(19.0, 2, 1)]


def test_a_burst_at_max_replicas_holds_the_count_for_a_scale_down_delay_after_it() -> None:
    """At max_replicas a burst cannot scale up; it still counts as a need of the maximum, so
    the count goes down only once the burst has left the scale-down window, in one step,
    with no other event."""
    sim = Sim(
        spec(
            max_replicas=3,
            stable_window=5,
            panic_window=1,
            scale_down_delay=10,
            stability_period=0,
        ),
        desired=3,
    )
    sim.run(5, steady(in_flight=4))  # need 1 from t=1, under the down delay
    sim.step(in_flight=30)  # t=6: panic, but already at the maximum
    sim.run(20, steady(in_flight=4))  # the stable window needs 3 until t=10
    assert [c[:3] for c in sim.changes] == [(20.0, 3, 1)]


def test_after_a_step_down_the_next_step_waits_the_scale_down_delay_again() -> None:
    sim = Sim(
        spec(stable_window=1, panic_window=1, scale_down_delay=10, stability_period=0), desired=4
    )
    sim.run(5, steady(in_flight=8))  # need 2 from t=1
    sim.run(30, steady(in_flight=4))  # need 1 from t=6
    # t=11: down to the highest need of (1, 11], which is 2; the need is first seen below
    # the new count at t=12, so 1 comes 10 s after that
    assert downs(sim) == [(11.0, 4, 2), (22.0, 2, 1)]


def test_a_need_exactly_scale_down_delay_old_no_longer_holds_the_count_up() -> None:
    sim = Sim(
        spec(stable_window=1, panic_window=1, scale_down_delay=10, stability_period=0), desired=3
    )
    sim.step(in_flight=8)  # t=1: need 2 (below 3)
    sim.run(10, steady())  # need 1 from t=2
    # t=11: (1, 11] holds needs of 1 only: straight down to 1
    assert downs(sim) == [(11.0, 3, 1)]


def test_the_stability_period_counts_from_the_autoscalers_own_last_change() -> None:
    sim = Sim(spec(stable_window=5, panic_window=1, scale_down_delay=0, stability_period=60))
    sim.run(100, steady(in_flight=4))  # need 1, count 1, nothing changes
    sim.run(10, steady(in_flight=10))  # up to 3 (panic at t=101)
    sim.run(100, steady(in_flight=1))
    assert ups(sim)[0][0] == 101
    assert downs(sim)[0][0] >= 161


def test_the_stability_period_counts_from_a_change_made_by_someone_else() -> None:
    sim = Sim(spec(stable_window=1, panic_window=1, scale_down_delay=0, stability_period=60))
    sim.run(100, steady())
    sim.desired = 3  # `podium scale` at t=100; the next pass (t=101) sees it
    sim._ready.append((sim.t, 3))
    sim.run(100, steady())
    assert downs(sim) == [(161.0, 3, 1)]


# ---------------------------------------------------------------------- missing signals


def test_no_samples_yet_means_no_load() -> None:
    s = spec(min_replicas=0, scale_to_zero_after=10)
    first = decide(ScalingContext(now=5.0, spec=s, desired=1, ready=1), ScalerState())
    assert (first.desired, first.reason) == (1, None)
    assert (first.data["concurrency"], first.data["need"]) == (0.0, 0)
    later = decide(ScalingContext(now=15.0, spec=s, desired=1, ready=1), first.state)
    assert (later.desired, later.reason) == (0, "scaled 1→0: idle for 10s")


def test_a_rule_figure_missing_from_a_sample_counts_as_zero() -> None:
    """A scrape that failed (or a replica without the gauge) is no load; it neither breaks
    the policy nor scales anything up."""
    rule = ScalingRule(metric="queue_depth", target=0.5)
    sim = Sim(spec(rules=[rule], stable_window=10, panic_window=1), desired=1)
    sim.run(30, steady())  # no rule figures at all
    assert sim.changes == []
    sim.run(10, lambda t: {"metrics": {"queue_depth": 2.0} if int(t) % 2 else {}})
    assert sim.desired == 2  # averages 1 over the window: 1 / 0.5


def test_averages_are_weighted_by_time_not_by_the_number_of_passes() -> None:
    """Documented: a burst of passes does not count more than a quiet second. Nine quiet
    seconds, then ten passes in the last second at 10 in flight: the 10 s average is 1."""
    s = spec(stable_window=10, panic_window=1)
    quiet = [Sample(float(t)) for t in range(10)]
    busy = [Sample(9 + i / 10, in_flight=10) for i in range(1, 11)]
    d = decide(ScalingContext(now=10.0, spec=s, desired=2, ready=2, samples=quiet + busy), S0)
    assert d.data["concurrency"] == 1.0
    # Within the short window too: 10 in flight for 0.2 s, then nothing for 0.8 s.
    samples = [Sample(9.0), Sample(9.2, in_flight=10), Sample(10.0)]
    d = decide(ScalingContext(now=10.0, spec=s, desired=2, ready=2, samples=samples), S0)
    assert d.data["panic_concurrency"] == 2.0
    # The figures are rounded to three decimals: 7 in flight for 0.1234 s of the last second.
    samples = [Sample(9.0), Sample(9.1234, in_flight=7), Sample(10.0)]
    d = decide(ScalingContext(now=10.0, spec=s, desired=2, ready=2, samples=samples), S0)
    assert d.data["panic_concurrency"] == 0.864


def test_a_sample_exactly_one_window_old_no_longer_counts() -> None:
    s = spec(stable_window=30, panic_window=3)
    ctx = ScalingContext(now=30.0, spec=s, desired=1, ready=1, samples=[Sample(0.0, 40)])
    d = decide(ctx, S0)
    assert (d.data["concurrency"], d.data["panic_concurrency"]) == (0.0, 0.0)
    assert d.desired == 1


def test_the_first_sample_counts_on_its_own() -> None:
    """A controller that just started has one sample: a burst in it scales up at once."""
    s = spec(stable_window=30, panic_window=3)
    ctx = ScalingContext(now=5.0, spec=s, desired=1, ready=1, samples=[Sample(5.0, 40)])
    d = decide(ctx, ScalerState())
    assert d.data["concurrency"] == 40.0
    assert (d.desired, d.data["signal"]) == (10, "panic_concurrency")


def test_at_zero_requests_that_arrived_but_are_not_held_bring_nothing_up() -> None:
    """Only held requests wake an endpoint at zero (docs/autoscaling.md, rule 3): requests
    counted as arriving that no longer wait (a client with `X-Podium-Wait-Timeout: 0` got
    its 504 at once) start no replica."""
    sim = Sim(spec(min_replicas=0), desired=0)
    sim.run(30, steady(rps=2.0))
    assert sim.changes == []
