"""The autoscaler never scales past a project's quotas: the pure cap, the glue on fake time
(a real SQLite store, a fake gateway), and a whole controller on the fake backend."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from podium.control.autoscaling import Autoscaling
from podium.control.loop import Controller
from podium.control.quota_cap import cap
from podium.control.scale_policy import Decision, ScalerState
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus, EventKind
from podium.core.quotas import Quotas, Usage
from podium.core.routing import EndpointLoad
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.records import EndpointRecord
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, sqlite_url
from tests.unit.control.fakes import db as spin_db

__all__ = ["spin_db", "sqlite_url"]


# ---------------------------------------------------------------------- the pure cap


def up(cur: int, n: int) -> Decision:
    return Decision(n, ScalerState(known_desired=n), f"scaled {cur}→{n}: load", {"to": n})


def test_a_decision_that_fits_or_does_not_grow_is_left_alone() -> None:
    q = Quotas(max_replicas=4)
    assert cap(up(1, 3), 1, q, Usage(replicas=1), 1.0, 0).decision == up(1, 3)
    down = Decision(0, ScalerState(), "scaled 2→0: idle", {})
    assert cap(down, 2, Quotas(max_replicas=0), Usage(replicas=9), 1.0, 0).decision == down
    assert cap(up(1, 9), 1, None, Usage(), 1.0, 0).quota is None


def test_a_wake_from_zero_is_held_by_max_endpoints() -> None:
    """At zero an endpoint uses no quota, so waking it adds an endpoint to its project."""
    q = Quotas(max_endpoints=1)
    held = cap(up(0, 1), 0, q, Usage(endpoints=1, replicas=1), 1.0, 0)
    assert (held.held, held.quota, held.decision.desired) == (True, "max_endpoints", 0)
    assert "capped by project quota max_endpoints=1" in (held.decision.reason or "")
    assert cap(up(0, 1), 0, q, Usage(), 1.0, 0).decision == up(0, 1)
    # an endpoint already up is already counted: growing it is not an endpoint more
    assert cap(up(1, 2), 1, q, Usage(endpoints=0, replicas=0), 1.0, 0).decision == up(1, 2)


def test_a_scale_up_past_a_quota_is_capped_and_says_which() -> None:
    got = cap(up(1, 5), 1, Quotas(max_replicas=4), Usage(replicas=1), 1.0, 0)
    assert (got.decision.desired, got.quota, got.held) == (3, "max_replicas", False)
    assert (
        got.decision.reason == "scaled 1→3 (wanted 5: load): capped by project quota max_replicas=4"
    )
    assert got.decision.data["wanted"] == 5 and got.decision.state.known_desired == 3
    # the tightest quota wins: 2 cpus per replica, 5 cpus left → 2 replicas
    got = cap(up(0, 4), 0, Quotas(max_replicas=10, max_cpus=6), Usage(cpus=1), 2.0, 0)
    assert (got.decision.desired, got.quota) == (2, "max_cpus")
    # one replica's memory counts too (`resources`: 0.02 CPUs, 4 GiB each)
    got = cap(up(1, 50), 1, Quotas(max_cpus=1, max_memory_mb=8192), Usage(), 0.02, 0, 4096)
    assert (got.decision.desired, got.quota) == (2, "max_memory_mb")


def test_no_room_at_all_holds_the_count() -> None:
    got = cap(up(0, 1), 0, Quotas(max_gpus=1), Usage(gpus=1), 4.0, 1)
    assert got.held and got.decision.desired == 0
    assert got.decision.reason == "not scaled 0→1: capped by project quota max_gpus=1"
    # a quota already passed never scales down
    got = cap(up(3, 4), 3, Quotas(max_replicas=2), Usage(), 1.0, 0)
    assert got.held and got.decision.desired == 3


# ---------------------------------------------------------------------- the glue


@dataclass
class LoadGateway:
    loads: dict[str, EndpointLoad] = field(default_factory=dict)

    def outstanding(self, replica_id: str) -> int:
        return 0

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return dict(self.loads)


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    with database.unit_of_work() as uow:
        uow.projects.create("team", quotas=Quotas(max_replicas=3))
    yield database
    database.dispose()


def deploy(
    db: Database, name: str, *, desired: int, status: EndpointStatus, **scaling: Any
) -> None:
    spec = EndpointSpec.model_validate(
        {
            "name": name,
            "project": "team",
            "model": "bundle:1",
            "framework": "python",
            "scaling": scaling,
        }
    )
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec, model_ref="team.bundle:1", status=status, desired_replicas=desired
        )


def endpoints(db: Database) -> list[EndpointRecord]:
    with db.unit_of_work(read_only=True) as uow:
        return uow.endpoints.list()


def desired(db: Database, key: str) -> int:
    with db.unit_of_work(read_only=True) as uow:
        return uow.endpoints.get(key).desired_replicas


def scaled(db: Database, key: str) -> list[str]:
    with db.unit_of_work(read_only=True) as uow:
        return [e.message for e in uow.events.list(key) if e.kind is EventKind.SCALED]


def one_pass(scaler: Autoscaling, db: Database) -> list[EndpointRecord]:
    return asyncio.run(scaler.run(endpoints(db), [], None))


def test_the_autoscaler_caps_at_the_quota_and_says_so_once(tmp_path: Path, db: Database) -> None:
    deploy(db, "busy", desired=1, status=EndpointStatus.RUNNING, min_replicas=1, max_replicas=4)
    deploy(
        db, "echo", desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=8
    )
    gateway, clock = LoadGateway(), FakeClock()
    scaler = Autoscaling(Settings(home=tmp_path / "home"), db, clock, gateway)
    gateway.loads["team.echo"] = EndpointLoad(held=16, requests=16)  # wants 4
    one_pass(scaler, db)
    assert desired(db, "team.echo") == 2  # 3 allowed, busy holds 1
    (event,) = scaled(db, "team.echo")
    assert event.startswith("scaled 0→2 (wanted 4: ")
    assert event.endswith("): capped by project quota max_replicas=3")
    for _ in range(3):  # still wanted, still no room: said once, nothing written
        clock.advance(1)
        one_pass(scaler, db)
    assert desired(db, "team.echo") == 2
    assert scaled(db, "team.echo") == [event]  # the cap at 2 was said already
    assert desired(db, "team.busy") == 1 and scaled(db, "team.busy") == []


def test_a_wake_from_zero_that_cannot_fit_gets_an_event(tmp_path: Path, db: Database) -> None:
    deploy(db, "busy", desired=3, status=EndpointStatus.RUNNING, min_replicas=3, max_replicas=3)
    deploy(
        db, "echo", desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=2
    )
    gateway, clock = LoadGateway(), FakeClock()
    scaler = Autoscaling(Settings(home=tmp_path / "home"), db, clock, gateway)
    gateway.loads["team.echo"] = EndpointLoad(held=1, requests=1)
    one_pass(scaler, db)
    assert desired(db, "team.echo") == 0
    assert scaled(db, "team.echo") == ["not scaled 0→1: capped by project quota max_replicas=3"]
    # room made (the busy one paused): the held request wakes it on the next pass
    with db.unit_of_work() as uow:
        uow.endpoints.set_status("team.busy", EndpointStatus.PAUSED, "paused by user")
    clock.advance(1)
    one_pass(scaler, db)
    assert desired(db, "team.echo") == 1
    assert scaled(db, "team.echo")[-1].startswith("scaled 0→1: ")


def test_two_endpoints_of_a_project_cannot_both_take_the_last_room(
    tmp_path: Path, db: Database
) -> None:
    for name in ("one", "two"):
        deploy(
            db,
            name,
            desired=0,
            status=EndpointStatus.SCALED_TO_ZERO,
            min_replicas=0,
            max_replicas=4,
        )
    gateway = LoadGateway({k: EndpointLoad(held=8, requests=8) for k in ("team.one", "team.two")})
    scaler = Autoscaling(Settings(home=tmp_path / "home"), db, FakeClock(), gateway)
    one_pass(scaler, db)
    assert (desired(db, "team.one"), desired(db, "team.two")) == (2, 1)


# ---------------------------------------------------------------------- the controller


class HeldGateway:
    def __init__(self) -> None:
        self.held = 0

    def outstanding(self, replica_id: str) -> int:
        return 0

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return {"spin": EndpointLoad(held=self.held, requests=self.held)}


def test_the_controller_starts_no_more_replicas_than_the_quota_allows(
    tmp_path: Path, spin_db: Database
) -> None:
    """`spin` (default project, 2 replicas) may scale to 6; the default project allows 3."""
    with spin_db.unit_of_work() as uow:
        rec = uow.endpoints.get("spin")
        scaling = rec.spec.scaling.model_copy(update={"max_replicas": 6})
        new = rec.spec.model_copy(update={"scaling": scaling})
        uow.endpoints.update_spec("spin", new, new_revision_model_ref=None, desired_replicas=2)
        uow.projects.update("default", quotas=Quotas(max_replicas=3))
    gateway = HeldGateway()
    h = Harness(tmp_path, spin_db, FakeReplicas(), gateway)  # type: ignore[arg-type]

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert len(ctl.state.replicas) == 2
        gateway.held = 40  # wants more than 3
        await h.passes(ctl, 4)
        assert len(ctl.state.replicas) == 3

    h.run(steps)
    assert len(h.backend.started) == 3
    assert desired(spin_db, "spin") == 3
    (event,) = scaled(spin_db, "spin")
    assert re.fullmatch(
        r"scaled 2→3 \(wanted [4-6]: .* in flight .*\): capped by project quota max_replicas=3",
        event,
    )


def test_room_taken_through_the_api_during_a_pass_is_counted(tmp_path: Path, db: Database) -> None:
    """The pass read the endpoints before another one took the project's room: the
    scale-up is checked again under the project's lock and not written."""
    deploy(
        db, "echo", desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=3
    )
    stale = endpoints(db)
    deploy(db, "late", desired=3, status=EndpointStatus.PENDING, min_replicas=3, max_replicas=3)
    gateway = LoadGateway({"team.echo": EndpointLoad(held=8, requests=8)})
    clock = FakeClock()
    scaler = Autoscaling(Settings(home=tmp_path / "home"), db, clock, gateway)
    asyncio.run(scaler.run(stale, [], None))
    assert desired(db, "team.echo") == 0 and scaled(db, "team.echo") == []
    clock.advance(1)
    one_pass(scaler, db)  # the next pass sees it
    assert desired(db, "team.echo") == 0
    assert scaled(db, "team.echo") == ["not scaled 0→2: capped by project quota max_replicas=3"]


def test_a_wake_from_zero_is_held_by_max_endpoints_in_a_pass(tmp_path: Path, db: Database) -> None:
    """At zero the endpoint takes no endpoint of the quota; waking it would, so a project
    already at max_endpoints holds the wake (and says so), in the pass and under the lock."""
    with db.unit_of_work() as uow:
        uow.projects.update("team", quotas=Quotas(max_endpoints=1))
    deploy(db, "busy", desired=1, status=EndpointStatus.RUNNING, min_replicas=1, max_replicas=1)
    deploy(
        db, "echo", desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=2
    )
    gateway, clock = LoadGateway(), FakeClock()
    scaler = Autoscaling(Settings(home=tmp_path / "home"), db, clock, gateway)
    gateway.loads["team.echo"] = EndpointLoad(held=1, requests=1)
    one_pass(scaler, db)
    assert desired(db, "team.echo") == 0
    assert scaled(db, "team.echo") == ["not scaled 0→1: capped by project quota max_endpoints=1"]
    # a pass that read the project before "busy" existed is checked again under the lock
    with db.unit_of_work() as uow:
        uow.endpoints.set_status("team.busy", EndpointStatus.PAUSED, "paused by user")
    stale = endpoints(db)
    with db.unit_of_work() as uow:
        uow.endpoints.set_status("team.busy", EndpointStatus.RUNNING, "resumed")
    clock.advance(1)
    asyncio.run(scaler.run(stale, [], None))
    assert desired(db, "team.echo") == 0
    # room made for good: the held request wakes it
    with db.unit_of_work() as uow:
        uow.endpoints.set_status("team.busy", EndpointStatus.PAUSED, "paused by user")
    clock.advance(1)
    one_pass(scaler, db)
    assert desired(db, "team.echo") == 1
