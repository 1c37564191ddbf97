"""A replica that cannot get its GPUs waits, pending: the controller (on fake time,
tests/unit/control/fakes.py) asks a GPU-counting backend for room before it starts, says
why once (a `replica_waiting` event and the status reason), never fails the endpoint, and
starts the replica in the pass after another endpoint's replica gave its GPU back. A start
the backend refuses anyway (`NoRoom`: another start took the room) is waited on the same
way, not counted as a crash."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from podium.backends.base import ObservedReplica, ReplicaLaunch, ReplicaSize
from podium.backends.gpu_inventory import GpuDevice, GpuInventory
from podium.control.loop import Controller
from podium.control.reconciler import EndpointView, ReplicaView, plan
from podium.core.errors import NoRoom
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.records import EventRecord
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, sqlite_url

__all__ = ["sqlite_url"]


class GpuBackend(FakeBackend):
    """The fake backend on a node with `count` GPUs, placed by the real inventory: a start
    takes the replica's GPUs or is refused (`NoRoom`), an exit gives them back."""

    def __init__(self, count: int, *, honest: bool = True) -> None:
        super().__init__()
        self.inventory = GpuInventory([GpuDevice(i) for i in range(count)])
        self.honest = honest  # False: `room_for` always says there is room (a race)
        self.refused: list[str] = []

    def room_for(self, size: ReplicaSize, without: Collection[str] = ()) -> int | None:
        if size.gpus == 0 or size.gpus > self.inventory.total or not self.honest:
            return None
        return int(self.inventory.free(without) // size.gpus)

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        if self.inventory.assign(launch.replica_id, launch.size.gpus) is None:
            self.refused.append(launch.replica_id)
            raise NoRoom(f"waiting for GPUs: replica {launch.replica_id} needs some, too few free")
        return self.start_now(launch)

    async def poll(self) -> list[ObservedReplica]:
        seen = await super().poll()
        for obs in seen:
            if not obs.alive:
                self.inventory.release(obs.replica_id)
        return seen


def _spec(name: str, **size: object) -> EndpointSpec:
    fields = size or {"instance_type": "gpu-small"}
    return EndpointSpec.model_validate(
        {"name": name, "model": "bundle:1", "framework": "python", **fields}
    )


def _endpoint(db: Database, name: str, path: Path, desired: int = 1) -> None:
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            _spec(name),
            model_ref="bundle:1",
            status=EndpointStatus.PENDING,
            desired_replicas=desired,
        )


def _update(db: Database, name: str, spec: EndpointSpec, desired: int) -> None:
    """A new revision of the endpoint (a rollout)."""
    with db.unit_of_work() as uow:
        uow.endpoints.update_spec(
            name, spec, new_revision_model_ref="bundle:1", desired_replicas=desired
        )


@pytest.fixture
def db(sqlite_url: str, tmp_path: Path) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    with database.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="test",
            path=str(tmp_path),
        )
    _endpoint(database, "hog", tmp_path)
    yield database
    database.dispose()


def _events(db: Database, name: str, kind: EventKind) -> list[EventRecord]:
    with db.unit_of_work(read_only=True) as uow:
        return [e for e in uow.events.list(name) if e.kind is kind]


def _status(db: Database, name: str) -> tuple[EndpointStatus, str | None]:
    with db.unit_of_work(read_only=True) as uow:
        ep = uow.endpoints.get(name)
    return ep.status, ep.status_reason


def _started(h: Harness, name: str) -> list[str]:
    return [launch.replica_id for launch in h.backend.started if launch.endpoint == name]


def test_waits_pending_with_one_event_and_starts_once_a_gpu_is_released(
    tmp_path: Path, db: Database
) -> None:
    h = Harness(tmp_path, db, FakeReplicas())
    backend = h.backend = GpuBackend(1)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)
        (hog,) = _started(h, "hog")  # it holds the node's one GPU
        _endpoint(db, "spin", tmp_path)
        await h.passes(ctl, 10)
        assert _started(h, "spin") == []  # asked first: never started to be refused
        assert backend.refused == []
        status, why = _status(db, "spin")
        assert status is not EndpointStatus.FAILED
        assert why is not None and why.startswith("waiting for GPUs: 1 replica of revision 1")
        (waiting,) = _events(db, "spin", EventKind.REPLICA_WAITING)  # once, not each pass
        assert "needs 1 GPU each; none is placed now" in waiting.message

        with db.unit_of_work() as uow:  # another endpoint lets its GPU go
            uow.endpoints.set_desired("hog", 0)
        await h.passes(ctl, 3)
        assert h.backend.stopped == [hog]
        assert len(_started(h, "spin")) == 1
        assert h.backend.live() == _started(h, "spin")
        await h.passes(ctl, 3)
        assert "GPU" not in (_status(db, "spin")[1] or "")  # placed: no longer the reason

    h.run(steps)
    assert len(_events(db, "spin", EventKind.REPLICA_WAITING)) == 1
    assert _events(db, "spin", EventKind.REPLICA_CRASHED) == []


def test_a_start_refused_for_room_waits_without_a_crash(tmp_path: Path, db: Database) -> None:
    h = Harness(tmp_path, db, FakeReplicas())
    backend = h.backend = GpuBackend(1, honest=False)  # says "room", then refuses

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)
        _endpoint(db, "spin", tmp_path)
        await h.passes(ctl, 5)
        assert backend.refused  # tried, refused
        status, why = _status(db, "spin")
        assert status is not EndpointStatus.FAILED
        assert why is not None and why.startswith("waiting for GPUs")

    h.run(steps)
    assert len(_events(db, "spin", EventKind.REPLICA_WAITING)) == 1
    assert _events(db, "spin", EventKind.REPLICA_CRASHED) == []


def test_a_rollout_on_a_full_node_drains_an_old_replica_for_the_new_one(
    tmp_path: Path, db: Database
) -> None:
    """Surge needs a second GPU the node does not have: the new revision's replica waits,
    so the old one (which holds the GPU) is drained for it instead of never."""
    h = Harness(tmp_path, db, FakeReplicas())
    backend = h.backend = GpuBackend(1)

    def revision_of(rid: str) -> int:
        return next(s.revision for s in backend.started if s.replica_id == rid)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        (old,) = backend.live()
        _update(db, "hog", _spec("hog"), 1)
        for _ in range(30):
            await h.passes(ctl, 1)
            if any(revision_of(r) == 2 for r in backend.live()):
                break
        assert old in backend.stopped  # drained and stopped: its GPU went back
        (new,) = backend.live()
        assert revision_of(new) == 2
        await h.passes(ctl, 3)

    h.run(steps)
    (waiting,) = _events(db, "hog", EventKind.REPLICA_WAITING)
    assert "revision 2" in waiting.message
    assert _status(db, "hog")[0] is EndpointStatus.RUNNING


def _routed(h: Harness, name: str) -> int:
    table = h.holder.table.endpoints.get(name)
    return 0 if table is None else len(table.replicas)


def test_a_rollout_to_a_bigger_size_never_drains_an_old_replica_that_would_not_make_room(
    tmp_path: Path, db: Database
) -> None:
    """Review A, finding 3: a 2-GPU node where another endpoint holds one GPU; "roll" moves
    from 1 GPU to 2. Draining its old replica would free one GPU, and the new one needs two:
    the old one keeps serving (the new one waits) until the other endpoint lets its GPU go,
    and only then is it drained for the new one."""
    h = Harness(tmp_path, db, FakeReplicas())
    backend = h.backend = GpuBackend(2)

    def revision_of(rid: str) -> int:
        return next(s.revision for s in backend.started if s.replica_id == rid)

    async def steps(ctl: Controller) -> None:
        _endpoint(db, "roll", tmp_path)
        await h.passes(ctl, 4)
        (old,) = _started(h, "roll")
        assert _routed(h, "roll") == 1 and backend.inventory.free() == 0
        _update(db, "roll", _spec("roll", resources={"gpus": 2}), 1)
        for _ in range(15):
            await h.passes(ctl, 1)
            assert old not in backend.stopped, "drained for a replica that still cannot fit"
            assert _routed(h, "roll") == 1  # it keeps serving
        assert _started(h, "roll") == [old]
        status, why = _status(db, "roll")
        assert status is EndpointStatus.UPDATING, why

        with db.unit_of_work() as uow:  # the other endpoint lets its GPU go: now it works
            uow.endpoints.set_desired("hog", 0)
        for _ in range(30):
            await h.passes(ctl, 1)
            if any(revision_of(r) == 2 for r in backend.live()):
                break
        assert old in backend.stopped
        (new,) = backend.live()
        assert revision_of(new) == 2 and len(backend.inventory.held_by(new)) == 2
        await h.passes(ctl, 3)

    h.run(steps)
    (waiting,) = _events(db, "roll", EventKind.REPLICA_WAITING)
    assert "needs 2 GPUs each" in waiting.message
    assert _status(db, "roll")[0] is EndpointStatus.RUNNING


def test_a_rollout_on_a_full_node_is_short_of_at_most_one_replica_at_a_time(
    tmp_path: Path, db: Database
) -> None:
    """Three replicas on a three-GPU node: each new one needs an old one's GPU. They are
    replaced one by one (an old one is drained when the last new one is ready), never all
    drained at once because all three new ones wait."""
    h = Harness(tmp_path, db, FakeReplicas())
    backend = h.backend = GpuBackend(3)

    def revision_of(rid: str) -> int:
        return next(s.revision for s in backend.started if s.replica_id == rid)

    async def steps(ctl: Controller) -> None:
        with db.unit_of_work() as uow:
            uow.endpoints.set_desired("hog", 3)
        await h.passes(ctl, 5)
        assert _routed(h, "hog") == 3
        _update(db, "hog", _spec("hog"), 3)
        fewest = 3
        for _ in range(80):
            await h.passes(ctl, 1)
            fewest = min(fewest, _routed(h, "hog"))
            live = backend.live()
            if len(live) == 3 and all(revision_of(r) == 2 for r in live):
                break
        assert sorted(revision_of(r) for r in backend.live()) == [2, 2, 2]
        assert fewest >= 2, f"only {fewest} replica(s) served during the rollout"
        await h.passes(ctl, 5)
        assert _routed(h, "hog") == 3

    h.run(steps)
    assert _status(db, "hog")[0] is EndpointStatus.RUNNING


def test_the_plan_drains_the_old_replicas_the_controller_names_to_make_room() -> None:
    old = [ReplicaView(f"old-{i}", 1, ReplicaState.READY, float(i)) for i in range(3)]
    view = EndpointView("hog", EndpointStatus.UPDATING, revision=2, desired=3)
    assert plan(view, old, now=10.0).drain == []  # surge: nothing drained before a new one
    p = plan(replace(view, make_room=("old-0",)), old, now=10.0)
    assert (p.start, p.drain) == (3, ["old-0"])
    new = ReplicaView("new-0", 2, ReplicaState.READY, 5.0)  # one new ready: one old goes
    p = plan(replace(view, make_room=("old-1",)), [*old, new], now=10.0)
    assert sorted(p.drain) == ["old-0", "old-1"]
