"""Scale to zero on fake time while a replica is still starting: the ready one is drained
and stopped at once, the starting one is left alone (stopping it would waste its start
and a wake right after would need a new one) and is never routed; once it is ready it is
drained too, and only then is the endpoint scaled to zero. Nothing counts as a crash."""

from __future__ import annotations

from pathlib import Path

from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.store import Database
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, events, sqlite_url, status

__all__ = ["db", "sqlite_url"]


def states(ctl: Controller) -> dict[str, ReplicaState]:
    return {r.host: r.state for r in ctl.state.replicas.values()}


def reason(db: Database) -> str | None:
    with db.unit_of_work(read_only=True) as uow:
        return uow.endpoints.get("spin").status_reason


def test_scale_to_zero_waits_for_a_starting_replica_and_never_routes_it(
    tmp_path: Path, db: Database
) -> None:
    replicas = FakeReplicas()
    replicas.refused.add("r2.test")  # the second replica is still loading its model
    h = Harness(tmp_path, db, replicas)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)
        assert states(ctl) == {"r1.test": ReplicaState.READY, "r2.test": ReplicaState.STARTING}
        with db.unit_of_work() as uow:  # as the autoscaler writes it after the idle time
            uow.endpoints.set_desired("spin", 0)
        await h.passes(ctl, 1)
        assert states(ctl)["r1.test"] is ReplicaState.DRAINING
        assert h.routed() == []
        await h.passes(ctl, 2)
        assert states(ctl) == {"r2.test": ReplicaState.STARTING}  # left alone
        assert status(db) is EndpointStatus.RUNNING
        assert reason(db) == "scaling to zero: 1 replica(s) left"
        replicas.refused.clear()  # it finishes loading
        await h.passes(ctl, 1)
        assert h.routed() == []  # ready, but not wanted: drained, never routed
        await h.passes(ctl, 3)
        assert states(ctl) == {}
        assert status(db) is EndpointStatus.SCALED_TO_ZERO

    h.run(steps)
    assert sorted(rid for rid, _ in h.backend.killed) == sorted(
        s.replica_id for s in h.backend.started
    )
    assert len(h.backend.started) == 2  # nothing restarted
    assert events(db, EventKind.REPLICA_CRASHED) == []
