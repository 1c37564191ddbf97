"""A load failure is deterministic: the controller (on fake time, tests/unit/control/fakes.py)
fails the target revision after the first replica that reports it and starts nothing more
of that revision, however many passes follow; an older revision keeps serving."""

from __future__ import annotations

from pathlib import Path

from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind, ExitReason
from podium.store import Database
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, events, sqlite_url

__all__ = ["db", "sqlite_url"]


def started(h: Harness, revision: int) -> list[str]:
    return [launch.replica_id for launch in h.backend.started if launch.revision == revision]


def reason(db: Database) -> tuple[EndpointStatus, str | None]:
    with db.unit_of_work(read_only=True) as uow:
        ep = uow.endpoints.get("spin")
    return ep.status, ep.status_reason


def test_a_fresh_endpoint_whose_model_fails_to_load_starts_nothing_more(
    tmp_path: Path, db: Database
) -> None:
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 1)
        first, second = started(h, 1)  # two desired replicas, started together
        h.backend.crash(first, ExitReason.LOAD_FAILED)
        await h.passes(ctl, 10)
        assert h.backend.killed == [(second, ExitReason.STOPPED)]  # the other one is stopped

    h.run(steps)
    assert len(started(h, 1)) == 2  # nothing after the load failure
    assert h.backend.live(1) == []
    status, why = reason(db)
    assert status is EndpointStatus.FAILED
    assert why is not None and why.startswith("revision 1 failed to load: ")
    assert events(db, EventKind.REPLICA_RESTARTED) == []
    (crashed,) = events(db, EventKind.REPLICA_CRASHED)
    assert "failed to load its model" in crashed.message


def test_a_new_revision_that_fails_to_load_is_not_retried_and_the_old_one_serves(
    tmp_path: Path, db: Database
) -> None:
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert len(h.backend.live(1)) == 2
        with db.unit_of_work() as uow:
            ep = uow.endpoints.get("spin")
            uow.endpoints.update_spec(
                "spin", ep.spec, new_revision_model_ref="bundle:1", desired_replicas=2
            )
        await h.passes(ctl, 1)
        new = started(h, 2)
        assert len(new) == 2  # the surge
        h.backend.crash(new[0], ExitReason.LOAD_FAILED)
        await h.passes(ctl, 10)

    h.run(steps)
    assert len(started(h, 2)) == 2  # no new replica of revision 2 after the failure
    assert h.backend.live(2) == []
    assert len(h.backend.live(1)) == 2  # the old revision still serves, untouched
    assert len(started(h, 1)) == 2
    status, why = reason(db)
    assert status is EndpointStatus.FAILED
    assert why is not None and why.endswith("; still serving revision 1")
    assert events(db, EventKind.REPLICA_RESTARTED) == []
