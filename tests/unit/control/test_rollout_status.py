"""The endpoint's status during a rollout, on fake time: `updating` until the last replica of
the old revision is gone (drained and stopped), then `running` — never `running` while an
old replica still finishes its requests (docs/architecture.md, "Endpoint status";
`podium update --wait` and `wait_rolled_out` wait for the same moment)."""

from __future__ import annotations

from pathlib import Path

from podium.control.loop import Controller
from podium.control.reconciler import EndpointView, ReplicaView, plan
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.store import Database
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, events, sqlite_url, status
from tests.unit.control.lifecycle import BusyGateway
from tests.unit.control.test_draining import draining, roll_out

__all__ = ["db", "sqlite_url"]

S = EndpointStatus


def old_replicas(ctl: Controller) -> list[tuple[str, ReplicaState]]:
    return sorted((r.replica_id, r.state) for r in ctl.state.replicas.values() if r.revision == 1)


def test_updating_until_the_old_revision_has_drained_and_stopped(
    tmp_path: Path, db: Database
) -> None:
    gateway = BusyGateway()
    h = Harness(tmp_path, db, FakeReplicas(), gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert status(db) is S.RUNNING
        old = h.backend.live(1)
        for rid in old:
            gateway.busy[rid] = 1  # a long request in flight to each old replica
        roll_out(db)
        for _ in range(6):  # the new revision starts, becomes ready, the old ones drain
            await h.passes(ctl, 1)
            if sorted(draining(ctl)) == old:
                break
        assert sorted(draining(ctl)) == old
        assert sorted(r.host for r in h.holder.table.endpoints["spin"].replicas) == [
            "r3.test",
            "r4.test",
        ]  # only the new revision serves: yet the old one is still there
        for _ in range(5):
            await h.passes(ctl, 1)
            assert [state for _, state in old_replicas(ctl)] == [ReplicaState.DRAINING] * 2
            assert status(db) is S.UPDATING
        # The requests finish: the old replicas are stopped, and only then is it running.
        for rid in old:
            gateway.busy[rid] = 0
        for _ in range(4):
            await h.passes(ctl, 1)
            if not old_replicas(ctl):
                break
            assert status(db) is S.UPDATING, old_replicas(ctl)
        assert old_replicas(ctl) == []
        await h.passes(ctl, 1)
        assert status(db) is S.RUNNING

    h.run(steps)
    changes = [(e.data["from"], e.data["to"]) for e in events(db, EventKind.STATUS)]
    # One rollout, one `updating` stretch: no `running` while the old revision drained.
    assert changes[-2:] == [("running", "updating"), ("updating", "running")]


def test_the_plan_says_updating_while_an_old_replica_drains_or_stops() -> None:
    """The pure rule, at the edge the loop test reaches: the new revision is fully ready."""
    new = [
        ReplicaView("c", 2, ReplicaState.READY, 5.0),
        ReplicaView("d", 2, ReplicaState.READY, 6.0),
    ]
    view = EndpointView(name="spin", status=S.UPDATING, revision=2, desired=2)
    for state in (ReplicaState.DRAINING, ReplicaState.STOPPING):
        p = plan(view, [*new, ReplicaView("a", 1, state, 1.0)], now=10)
        assert p.empty and (p.status, p.reason) == (S.UPDATING, "rolling out revision 2")
    gone = plan(view, [*new, ReplicaView("a", 1, ReplicaState.EXITED, 1.0)], now=10)
    assert (gone.status, gone.reason) == (S.RUNNING, None)
