"""Scaled to zero by the user ("parked"): a count of 0 under `min_replicas >= 1` stays at
zero, whatever the windows remember, until a request is held or a task is queued; then the
minimum applies again. Pure policy on fake time (`Sim`)."""

from __future__ import annotations

from podium.control.scale_policy import Sample, ScalerState, ScalingContext, decide
from tests.unit.control.test_scale_policy_sim import Sim, spec, steady


def parked(**kw: object) -> Sim:
    """An endpoint with min 1 that served traffic, then was scaled to zero by the user."""
    sim = Sim(spec(min_replicas=1, max_replicas=4, **kw))
    sim.run(20, steady(in_flight=3, rps=5.0))
    assert sim.desired == 1
    sim.desired = 0  # the user's scale-to-zero: the store's count, written by the API
    return sim


def test_a_parked_endpoint_stays_at_zero_although_min_replicas_is_one() -> None:
    sim = parked()
    sim.run(600, steady())
    assert sim.desired == 0
    assert sim.changes == []


def test_traffic_still_finishing_or_counted_before_the_user_scaled_to_zero_does_not_undo_it() -> (
    None
):
    sim = parked()
    sim.step(in_flight=3, rps=5.0, ready=0)  # draining replicas finish their requests
    sim.step(in_flight=1, rps=2.0, ready=0)
    sim.run(60, steady())
    assert sim.desired == 0


def test_a_held_request_wakes_a_parked_endpoint_to_its_minimum_at_once() -> None:
    sim = parked(stable_window=30)
    sim.run(10, steady())
    d = sim.step(held=1, ready=0)
    assert d.desired == 1
    assert d.data["signal"] == "held"
    assert d.reason == "scaled 0→1: 1 request(s) held with no ready replica, target 4 per replica"
    # Then the minimum applies again: idle for long, it never goes back to zero.
    sim.run(900, steady())
    assert sim.desired == 1


def test_a_wake_to_a_higher_minimum_goes_to_the_minimum_not_to_one() -> None:
    sim = Sim(spec(min_replicas=3, max_replicas=4))
    sim.desired = 0
    sim.run(5, steady())
    assert sim.desired == 0
    d = sim.step(held=1, ready=0)
    assert d.desired == 3


def test_a_queued_task_wakes_a_parked_endpoint() -> None:
    s = spec(min_replicas=1, max_replicas=4)
    ctx = ScalingContext(now=10.0, spec=s, desired=0, ready=0, samples=(Sample(10.0, pending=1),))
    d = decide(ctx, ScalerState(known_desired=0))
    assert (d.desired, d.data["signal"]) == (1, "queue")


def test_a_parked_count_survives_a_new_controller() -> None:
    """A restarted controller has no memory (empty state) and reads the store's 0 under
    min 1: it keeps it at zero."""
    s = spec(min_replicas=2, max_replicas=4)
    for t in range(1, 50):
        ctx = ScalingContext(now=float(t), spec=s, desired=0, ready=0, samples=(Sample(t),))
        assert decide(ctx, ScalerState()).desired == 0


def test_above_zero_the_minimum_still_clamps_at_once() -> None:
    """Only zero is parked: a count of 1 under a new min of 2 comes up to 2 at once."""
    sim = Sim(spec(min_replicas=2, max_replicas=4), desired=1)
    d = sim.step()
    assert (d.desired, d.data["signal"]) == (2, "bounds")
