"""Scaled to zero by the user ("parked"): a count of 0 the policy did not write stays at
zero, whatever the windows remember or the draining replicas still serve, until a request is
held or a task is queued; then the minimum applies again. With `min_replicas >= 1` the
store's count says so; with `min_replicas == 0` the policy's state remembers that the count
went to 0 under it. Pure policy on fake time (`Sim`)."""

from __future__ import annotations

import pytest

from podium.control.scale_policy import Sample, ScalerState, ScalingContext, decide
from tests.unit.control.test_scale_policy_sim import Sim, spec, steady


def parked(min_replicas: int = 1, **kw: object) -> Sim:
    """An endpoint that served traffic, then was scaled to zero by the user."""
    sim = Sim(spec(min_replicas=min_replicas, max_replicas=4, **kw))
    sim.run(20, steady(in_flight=3, rps=5.0))
    assert sim.desired == 1
    sim.desired = 0  # the user's scale-to-zero: the store's count, written by the API
    return sim


def test_a_parked_endpoint_stays_at_zero_although_min_replicas_is_one() -> None:
    sim = parked()
    sim.run(600, steady())
    assert sim.desired == 0
    assert sim.changes == []


@pytest.mark.parametrize("min_replicas", [0, 1])
def test_traffic_still_finishing_or_counted_before_the_user_scaled_to_zero_does_not_undo_it(
    min_replicas: int,
) -> None:
    sim = parked(min_replicas)
    sim.step(in_flight=3, rps=5.0, ready=0)  # draining replicas finish their requests
    sim.step(in_flight=1, rps=2.0, ready=0)
    sim.run(60, steady())
    assert sim.desired == 0
    assert sim.changes == []


def test_with_min_zero_a_held_request_still_wakes_it_and_idle_takes_it_back_to_zero() -> None:
    sim = parked(0, scale_to_zero_after=30)
    sim.step(in_flight=2, rps=3.0, ready=0)  # still finishing
    d = sim.step(held=1, ready=0)
    assert (d.desired, d.data["signal"]) == (1, "held")
    # Woken, it is an ordinary min-0 endpoint again: its own traffic scales it, and idle
    # takes it to zero after scale_to_zero_after.
    sim.run(5, steady(in_flight=1))
    sim.run(40, steady())
    assert [(old, new) for _, old, new, _ in sim.changes] == [(0, 1), (1, 0)]


def test_zero_written_by_the_policy_itself_is_not_parked() -> None:
    """After its own idle decision the policy knows the 0 is its own: at zero, load arriving
    now (not only held requests) is read as before."""
    sim = Sim(spec(min_replicas=0, max_replicas=4, scale_to_zero_after=5), desired=1)
    sim.run(10, steady())
    assert sim.desired == 0
    assert not sim.state.zeroed
    assert sim.step(in_flight=8, rps=4.0, ready=0).desired > 0


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
