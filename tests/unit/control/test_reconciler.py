"""The reconciler is a pure function: every scenario is a plain call."""

from __future__ import annotations

from podium.control.reconciler import EndpointView, ReplicaView, plan
from podium.core.phases import EndpointStatus as S
from podium.core.phases import ReplicaState as R


def ep(**kw: object) -> EndpointView:
    base: dict[str, object] = {"name": "iris", "status": S.PENDING, "revision": 1, "desired": 2}
    base.update(kw)
    return EndpointView(**base)  # type: ignore[arg-type]


def rep(rid: str, revision: int = 1, state: R = R.READY, started: float = 0.0) -> ReplicaView:
    return ReplicaView(rid, revision, state, started)


def test_fresh_endpoint_starts_desired_replicas_and_initializes() -> None:
    p = plan(ep(), [], now=10)
    assert p.start == 2
    assert p.status is S.INITIALIZING


def test_all_ready_is_running_with_nothing_to_do() -> None:
    p = plan(ep(status=S.INITIALIZING), [rep("a"), rep("b")], now=10)
    assert p.empty
    assert (p.status, p.reason) == (S.RUNNING, None)


def test_one_ready_of_two_is_running_with_a_reason() -> None:
    p = plan(ep(status=S.RUNNING), [rep("a"), rep("b", state=R.STARTING)], now=10)
    assert p.empty
    assert p.status is S.RUNNING
    assert p.reason == "1 of 2 replicas ready"


def test_crashed_replica_is_replaced_only_after_backoff() -> None:
    during = plan(ep(status=S.RUNNING, crash_streak=1, backoff_until=12), [rep("a")], now=11)
    assert during.start == 0
    after = plan(ep(status=S.RUNNING, crash_streak=1, backoff_until=12), [rep("a")], now=12)
    assert after.start == 1


def test_backoff_with_nothing_ready_says_why() -> None:
    p = plan(ep(desired=1, crash_streak=2, backoff_until=20), [], now=10)
    assert p.start == 0
    assert p.status is S.INITIALIZING
    assert p.reason == "restarting after 2 crash(es)"


def test_rollout_surges_new_revision_before_touching_old() -> None:
    old = [rep("a", 1), rep("b", 1)]
    p = plan(ep(status=S.RUNNING, revision=2), old, now=10)
    assert p.start == 2
    assert p.drain == [] and p.stop == []
    assert p.status is S.UPDATING


def test_rollout_drains_one_old_replica_per_ready_new_one() -> None:
    replicas = [
        rep("a", 1, started=1),
        rep("b", 1, started=2),
        rep("c", 2),
        rep("d", 2, R.STARTING),
    ]
    p = plan(ep(status=S.UPDATING, revision=2), replicas, now=10)
    assert p.start == 0
    assert p.drain == ["a"]  # the oldest goes first
    assert p.status is S.UPDATING


def test_rollout_finishes_when_new_revision_is_ready() -> None:
    p = plan(ep(status=S.UPDATING, revision=2), [rep("c", 2), rep("d", 2)], now=10)
    assert p.empty
    assert p.status is S.RUNNING


def test_failed_target_revision_keeps_old_one_serving() -> None:
    replicas = [rep("a", 1), rep("n", 2, R.STARTING)]
    p = plan(
        ep(status=S.UPDATING, revision=2, failure="revision 2 failed to load: boom"), replicas, 10
    )
    assert p.stop == ["n"]
    assert p.drain == []
    assert p.start == 0  # nothing new of the failed revision (desired is 2)
    assert p.status is S.FAILED
    assert p.reason == "revision 2 failed to load: boom; still serving revision 1"


def test_pause_stops_everything() -> None:
    p = plan(ep(status=S.PAUSED), [rep("a"), rep("b", state=R.STARTING)], now=10)
    assert p.drain == ["a"] and p.stop == ["b"]
    assert p.start == 0
    assert p.status is S.PAUSED


def test_scale_down_drains_surplus_ready_replicas_newest_first() -> None:
    replicas = [rep("a", started=1), rep("b", started=5), rep("c", started=9)]
    p = plan(ep(status=S.RUNNING, desired=1), replicas, now=10)
    assert p.drain == ["c", "b"]
    assert p.stop == [] and p.start == 0


def test_scale_down_never_stops_a_starting_replica() -> None:
    replicas = [rep("a", started=1), rep("b", started=5), rep("c", state=R.STARTING, started=9)]
    p = plan(ep(status=S.RUNNING, desired=1), replicas, now=10)
    assert p.stop == []  # c counts toward the desired count and is left alone
    assert p.drain == ["b"]  # one ready replica stays serving
    assert p.start == 0


def test_scale_down_keeps_ready_capacity_while_others_start() -> None:
    replicas = [rep("a"), rep("b", state=R.STARTING), rep("c", state=R.STARTING)]
    p = plan(ep(status=S.RUNNING, desired=1), replicas, now=10)
    assert p.empty  # the starting ones are drained once ready, if still surplus


def test_zero_desired_is_scaled_to_zero() -> None:
    p = plan(ep(desired=0), [], now=10)
    assert p.empty
    assert p.status is S.SCALED_TO_ZERO


def test_scale_to_zero_drains_ready_and_leaves_starting_replicas_alone() -> None:
    replicas = [rep("a"), rep("b", state=R.STARTING)]
    p = plan(ep(status=S.RUNNING, desired=0), replicas, now=10)
    assert p.drain == ["a"] and p.stop == []
    assert (p.status, p.reason) == (S.RUNNING, "scaling to zero: 2 replica(s) left")


def test_scaled_to_zero_only_once_no_replica_is_left() -> None:
    draining = plan(ep(status=S.RUNNING, desired=0), [rep("a", state=R.DRAINING)], now=10)
    assert draining.empty
    assert draining.status is S.RUNNING
    starting = plan(ep(status=S.INITIALIZING, desired=0), [rep("b", state=R.STARTING)], 10)
    assert starting.empty
    assert starting.status is S.INITIALIZING
    gone = plan(ep(status=S.RUNNING, desired=0), [], now=10)
    assert (gone.status, gone.reason) == (S.SCALED_TO_ZERO, None)


def test_scale_up_from_zero_counts_starting_replicas() -> None:
    p = plan(ep(status=S.INITIALIZING, desired=3), [rep("a", state=R.STARTING)], now=10)
    assert p.start == 2


def test_deleting_drains_then_deletes_when_nothing_is_left() -> None:
    busy = plan(ep(status=S.DELETING), [rep("a"), rep("b", state=R.STOPPING)], now=10)
    assert busy.drain == ["a"] and not busy.delete
    done = plan(ep(status=S.DELETING), [], now=10)
    assert done.delete


def test_stopping_replicas_are_not_counted_as_capacity() -> None:
    p = plan(ep(status=S.RUNNING, desired=1), [rep("a", state=R.STOPPING)], now=10)
    assert p.start == 1
