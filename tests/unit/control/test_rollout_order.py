"""The order of a rolling update on fake time: a new replica is ready before an old one
leaves routing, so the routing table never holds fewer than the desired replicas, and the
event log shows every old replica stopped after a new one became ready."""

from __future__ import annotations

from pathlib import Path

from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind
from podium.store import Database
from podium.store.records import EventRecord
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, sqlite_url, status
from tests.unit.control.lifecycle import all_events

__all__ = ["db", "sqlite_url"]

DESIRED = 2  # the harness's endpoint


def roll_out(db: Database) -> None:
    """A new revision (2), as `podium update` with a new model does."""
    with db.unit_of_work() as uow:
        ep = uow.endpoints.get("spin")
        uow.endpoints.update_spec(
            "spin", ep.spec, new_revision_model_ref="bundle:1", desired_replicas=2
        )


def check_order(events: list[EventRecord]) -> None:
    """Each old replica's stop comes after more new replicas became ready than old ones
    had stopped before it: capacity is handed over, never dropped."""
    new_ready = old_stopped = 0
    for e in events:
        if e.kind is EventKind.REPLICA_READY and e.data["revision"] == 2:
            new_ready += 1
        elif e.kind is EventKind.REPLICA_STOPPED and e.data["revision"] == 1:
            old_stopped += 1
            assert old_stopped <= new_ready, f"old replica stopped before its successor: {e}"


def test_new_replicas_are_ready_before_old_ones_leave_routing(tmp_path: Path, db: Database) -> None:
    probes = FakeReplicas()
    h = Harness(tmp_path, db, probes)
    routed_per_pass: list[list[str]] = []

    async def passes(ctl: Controller, n: int) -> None:
        for _ in range(n):
            await h.passes(ctl, 1)
            routed_per_pass.append(h.routed())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert h.routed() == ["r1.test", "r2.test"]
        # Revision 2's replicas (r3, r4) start but are slow to become ready.
        probes.refused |= {"r3.test", "r4.test"}
        roll_out(db)
        await passes(ctl, 5)
        assert len(h.backend.live(2)) == 2
        assert h.routed() == ["r1.test", "r2.test"]  # nothing handed over yet
        assert status(db) is EndpointStatus.UPDATING
        # One new replica ready: exactly one old one is drained for it.
        probes.refused.discard("r3.test")
        await passes(ctl, 3)
        assert len(h.routed()) == DESIRED and "r3.test" in h.routed()
        assert len(h.backend.live(1)) == 1
        # The second one: the rollout completes.
        probes.refused.discard("r4.test")
        await passes(ctl, 3)
        assert h.routed() == ["r3.test", "r4.test"]
        assert h.backend.live(1) == []

    h.run(steps)
    # No table the gateway could read had fewer than the desired replicas in it.
    assert all(len(routed) >= DESIRED for routed in routed_per_pass), routed_per_pass
    events = all_events(db)
    check_order(events)
    stops = [e for e in events if e.kind is EventKind.REPLICA_STOPPED]
    assert [e.data["revision"] for e in stops] == [1, 1]
    assert status(db) is EndpointStatus.RUNNING
