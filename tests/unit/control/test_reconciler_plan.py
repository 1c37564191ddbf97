"""The reconciler's plan at the edges the main scenarios do not reach: deleting and pausing,
scaling down while replicas start, scaling to zero in the middle of a rollout, the end of
a crash backoff, a failed revision with nothing older to fall back on.

Each test states what an operator would see if the plan were wrong (the replicas that keep
or lose traffic, the endpoint's status and reason)."""

from __future__ import annotations

from podium.control.reconciler import EndpointView, ReplicaView, plan
from podium.core.phases import EndpointStatus as S
from podium.core.phases import ReplicaState as R


def ep(**kw: object) -> EndpointView:
    base: dict[str, object] = {"name": "iris", "status": S.RUNNING, "revision": 1, "desired": 2}
    base.update(kw)
    return EndpointView(**base)  # type: ignore[arg-type]


def rep(rid: str, revision: int = 1, state: R = R.READY, started: float = 0.0) -> ReplicaView:
    return ReplicaView(rid, revision, state, started)


# ---------------------------------------------------------------------- deleting, pausing


def test_deleting_drains_ready_stops_starting_and_keeps_the_deleting_status() -> None:
    replicas = [rep("a"), rep("b", state=R.STARTING), rep("c", state=R.STOPPING)]
    p = plan(ep(status=S.DELETING), replicas, now=10)
    assert p.drain == ["a"] and p.stop == ["b"] and p.start == 0
    assert (p.status, p.reason) == (S.DELETING, None)
    assert not p.delete  # the row stays while any replica is left


def test_deleting_removes_the_row_only_once_no_replica_in_any_state_is_left() -> None:
    stopping = plan(ep(status=S.DELETING), [rep("c", state=R.STOPPING)], now=10)
    assert not stopping.delete and stopping.drain == [] and stopping.stop == []
    gone = plan(ep(status=S.DELETING), [], now=10)
    assert gone.delete
    assert (gone.status, gone.reason) == (S.DELETING, None)
    assert not gone.empty  # deleting the row is an action


def test_pausing_never_deletes_the_endpoint() -> None:
    busy = plan(ep(status=S.PAUSED), [rep("a"), rep("b", state=R.STARTING)], now=10)
    assert not busy.delete
    idle = plan(ep(status=S.PAUSED), [], now=10)
    assert not idle.delete
    assert idle.empty
    assert (idle.status, idle.reason) == (S.PAUSED, None)


# ---------------------------------------------------------------------- scaling down


def test_scale_down_never_drains_ready_replicas_below_the_desired_count() -> None:
    """More replicas than desired, but the surplus is still starting: every ready replica
    keeps serving (draining one would leave fewer ready replicas than desired)."""
    replicas = [
        rep("a", started=1),
        rep("b", started=2),
        rep("c", state=R.STARTING, started=3),
        rep("d", state=R.STARTING, started=4),
    ]
    p = plan(ep(desired=3), replicas, now=10)
    assert p.drain == [] and p.stop == [] and p.start == 0
    assert (p.status, p.reason) == (S.RUNNING, "2 of 3 replicas ready")


# ---------------------------------------------------------------------- scaling to zero


def test_scaling_to_zero_mid_rollout_is_running_while_the_old_revision_serves() -> None:
    p = plan(ep(status=S.UPDATING, revision=2, desired=0), [rep("a", 1)], now=10)
    assert p.drain == ["a"] and p.stop == [] and p.start == 0
    assert (p.status, p.reason) == (S.RUNNING, "scaling to zero: 1 replica(s) left")


def test_scaling_to_zero_mid_rollout_with_only_starting_replicas_stays_updating() -> None:
    replicas = [rep("a", 1, R.STARTING), rep("n", 2, R.STARTING)]
    p = plan(ep(status=S.UPDATING, revision=2, desired=0), replicas, now=10)
    assert p.stop == ["a"]  # an old revision's starting replica is never needed
    assert (p.status, p.reason) == (S.UPDATING, "scaling to zero: 2 replica(s) left")


def test_a_replica_ready_while_scaling_to_zero_makes_the_endpoint_running() -> None:
    """The endpoint was still initializing when its count went to zero; its replica became
    ready meanwhile and serves until it is drained."""
    p = plan(ep(status=S.INITIALIZING, desired=0), [rep("a")], now=10)
    assert p.drain == ["a"]
    assert (p.status, p.reason) == (S.RUNNING, "scaling to zero: 1 replica(s) left")


def test_scaling_to_zero_an_old_revision_still_starting_is_initializing() -> None:
    p = plan(ep(status=S.PENDING, revision=2, desired=0), [rep("a", 1, R.STARTING)], now=10)
    assert p.stop == ["a"]
    assert (p.status, p.reason) == (S.INITIALIZING, "scaling to zero: 1 replica(s) left")


# ---------------------------------------------------------------------- rollout, backoff, failure


def test_rollout_with_the_new_revision_fully_ready_drains_every_old_replica() -> None:
    replicas = [rep("a", 1, started=1), rep("b", 1, started=2), rep("c", 2), rep("d", 2)]
    p = plan(ep(status=S.UPDATING, revision=2), replicas, now=10)
    assert sorted(p.drain) == ["a", "b"] and p.stop == [] and p.start == 0
    assert (p.status, p.reason) == (S.UPDATING, "rolling out revision 2")


def test_the_restart_reason_ends_when_the_backoff_does() -> None:
    """The endpoint says it is waiting to restart exactly while the plan holds the start."""
    view = ep(status=S.INITIALIZING, desired=1, crash_streak=3, backoff_until=12)
    waiting = plan(view, [], now=11.5)
    assert waiting.start == 0
    assert waiting.reason == "restarting after 3 crash(es)"
    due = plan(view, [], now=12)
    assert due.start == 1
    assert (due.status, due.reason) == (S.INITIALIZING, None)


def test_failed_revision_with_nothing_older_stops_everything_and_says_why() -> None:
    replicas = [rep("a", 1), rep("b", 1, R.STARTING)]
    p = plan(ep(failure="revision 1 crashed 5 times"), replicas, now=10)
    assert sorted(p.stop) == ["a", "b"] and p.drain == [] and p.start == 0
    assert (p.status, p.reason) == (S.FAILED, "revision 1 crashed 5 times")
