"""The balancer on its own: pure choice logic on fake time."""

from __future__ import annotations

import random

import pytest

from podium.core.clock import FakeClock
from podium.core.routing import ReplicaRoute
from podium.gateway.balancer import Balancer

A, B, C = (ReplicaRoute(f"r{i}", "127.0.0.1", 9000 + i, revision=1) for i in range(3))


def make(eject_s: float = 2.0) -> tuple[Balancer, FakeClock]:
    clock = FakeClock()
    return Balancer(eject_s, clock=clock.monotonic, rng=random.Random(7)), clock


def test_two_replicas_least_outstanding_wins() -> None:
    balancer, _ = make()
    balancer.acquire("r0")
    assert {balancer.pick((A, B)) for _ in range(50)} == {B}


def test_ties_are_random() -> None:
    balancer, _ = make()
    assert {balancer.pick((A, B, C)) for _ in range(200)} == {A, B, C}


def test_p2c_never_picks_the_busiest_of_three() -> None:
    balancer, _ = make()
    for _ in range(5):
        balancer.acquire("r2")
    balancer.acquire("r1")
    picks = [balancer.pick((A, B, C)) for _ in range(200)]
    assert C not in picks
    assert picks.count(A) > picks.count(B)


def test_outstanding_counts_return_to_zero() -> None:
    balancer, _ = make()
    balancer.acquire("r0")
    balancer.acquire("r0")
    assert balancer.outstanding("r0") == 2
    balancer.release("r0")
    balancer.release("r0")
    assert balancer.outstanding("r0") == 0
    assert balancer.outstanding_all() == {}


def test_ejected_replica_is_skipped_until_eject_s_passed() -> None:
    balancer, clock = make(eject_s=2.0)
    balancer.eject("r0")
    assert {balancer.pick((A, B)) for _ in range(50)} == {B}
    clock.advance(2.0)
    assert not balancer.is_ejected("r0")
    assert {balancer.pick((A, B)) for _ in range(50)} == {A, B}


def test_all_ejected_still_picks_one() -> None:
    balancer, _ = make()
    balancer.eject("r0")
    balancer.eject("r1")
    assert balancer.pick((A, B)) in (A, B)
    assert balancer.pick((A,)) == A


def test_exclude_for_retries() -> None:
    balancer, _ = make()
    assert balancer.pick((A, B), exclude={"r0"}) == B
    assert balancer.pick((A, B), exclude={"r0", "r1"}) is None
    assert balancer.pick((A,), exclude={"r0"}) is None
    assert balancer.pick((), exclude=()) is None


def test_a_seeded_rng_makes_the_choice_repeatable() -> None:
    """The `rng` seam: the same seed, the same choices (the tests above rely on it)."""

    def picks(seed: int) -> list[ReplicaRoute | None]:
        balancer = Balancer(2.0, rng=random.Random(seed))
        return [balancer.pick((A, B, C)) for _ in range(30)]

    assert picks(7) == picks(7)
    assert picks(7) != picks(8)


@pytest.mark.parametrize("busiest", [0, 1, 2])
def test_the_busiest_of_three_is_never_picked_whichever_it_is(busiest: int) -> None:
    """The two choices are always two different replicas: one is less busy."""
    balancer, _ = make()
    replicas = (A, B, C)
    for _ in range(3):
        balancer.acquire(replicas[busiest].replica_id)
    picks = {balancer.pick(replicas) for _ in range(300)}
    assert picks == set(replicas) - {replicas[busiest]}
