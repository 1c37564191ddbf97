"""Exit accounting (control/exits.py) on fake time (tests/unit/control/fakes.py): crashes
while serving count per revision, and replicas on their way out never count."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind, ExitReason
from podium.store import Database
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import FakeGateway, Harness, db, events, sqlite_url

__all__ = ["db", "sqlite_url"]


def roll_out(db: Database) -> None:
    """A new revision (2) of the endpoint, as `podium update` with a new model does."""
    with db.unit_of_work() as uow:
        ep = uow.endpoints.get("spin")
        uow.endpoints.update_spec(
            "spin", ep.spec, new_revision_model_ref="bundle:1", desired_replicas=2
        )


@pytest.mark.parametrize(
    ("served", "ends"), [(1, EndpointStatus.FAILED), (2, EndpointStatus.RUNNING)]
)
def test_only_successes_of_the_crashing_revision_end_its_streak(
    tmp_path: Path, db: Database, served: int, ends: EndpointStatus
) -> None:
    # Revision 2 crashes on every request once ready; successes of revision 1 (the old
    # one, during the rollout) must not make that look healthy.
    gateway = FakeGateway()
    h = Harness(tmp_path, db, FakeReplicas(), gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        roll_out(db)
        await h.passes(ctl, 6)
        assert len(h.backend.live(2)) == 2
        for _ in range(3):  # the crash loop threshold
            gateway.serve(served, 10)
            h.backend.crash(h.backend.live(2)[0])
            await h.passes(ctl, 6)

    h.run(steps)
    with db.unit_of_work(read_only=True) as uow:
        ep = uow.endpoints.get("spin")
    assert ep.status is ends
    if ep.status is EndpointStatus.FAILED:
        assert ep.status_reason is not None
        assert "revision 2 crashed or hung 3 times while serving" in ep.status_reason
    assert len(events(db, EventKind.REPLICA_CRASHED)) == 3


def test_an_oom_on_the_way_out_is_reported_but_not_counted(tmp_path: Path, db: Database) -> None:
    # A replica of the target revision being stopped (scale-down) runs out of memory.
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        h.backend.stop_exit = ExitReason.OOM
        (first, *_) = h.backend.live(1)
        await ctl.act.stop(ctl.state.replicas[first], "not needed")
        await h.passes(ctl, 1)
        mem = ctl.state.memory["spin"]
        assert (mem.serving_crashes, mem.pending_restarts, mem.backoff_until) == (0, 0, 0.0)

    h.run(steps)
    assert len(events(db, EventKind.REPLICA_OOM)) == 1
    assert events(db, EventKind.REPLICA_RESTARTED) == []


def test_a_crash_of_a_draining_replica_is_not_counted(tmp_path: Path, db: Database) -> None:
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        (first, *_) = h.backend.live(1)
        ctl.act.drain(ctl.state.replicas[first])
        h.backend.crash(first)
        await h.passes(ctl, 1)
        assert ctl.state.memory["spin"].serving_crashes == 0
        assert ctl.state.memory["spin"].pending_restarts == 0

    h.run(steps)
    (crashed,) = events(db, EventKind.REPLICA_CRASHED)
    assert crashed.message.endswith("crashed: exit code -11")
