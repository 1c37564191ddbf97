"""Draining on fake time: a replica that leaves routing (scale-down, the end of a rollout)
is stopped only once it holds no request, or at the drain timeout; never while requests
are outstanding. The count is the replica's own (`/podium/info`: it covers every gateway)
and, for requests still on their way, the local gateway's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from podium.control.loop import Controller
from podium.core.errors import Unavailable
from podium.core.phases import EventKind, ExitReason, ReplicaState
from podium.core.routing import EndpointRoute, InProcessRoutingSource, RoutingTable
from podium.core.scaling_spec import ScalingSpec
from podium.core.spec import CommandSpec
from podium.store import Database
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, sqlite_url
from tests.unit.control.lifecycle import BusyGateway, replica_events

__all__ = ["db", "sqlite_url"]

DRAIN_TIMEOUT_S = 30.0  # ControlSettings' default


def scale_to_one(db: Database) -> None:
    """`podium scale spin --min 1 --max 1`: in place, no new revision."""
    with db.unit_of_work() as uow:
        spec = uow.endpoints.get("spin").spec
        spec = spec.model_copy(update={"scaling": ScalingSpec(min_replicas=1, max_replicas=1)})
        uow.endpoints.update_spec("spin", spec, new_revision_model_ref=None, desired_replicas=1)


def roll_out(db: Database) -> None:
    """A new revision (2), as `podium update` with a new model does."""
    with db.unit_of_work() as uow:
        ep = uow.endpoints.get("spin")
        uow.endpoints.update_spec(
            "spin", ep.spec, new_revision_model_ref="bundle:1", desired_replicas=2
        )


def draining(ctl: Controller) -> list[str]:
    return sorted(
        r.replica_id for r in ctl.state.replicas.values() if r.state is ReplicaState.DRAINING
    )


def stopped(h: Harness) -> list[str]:
    return sorted(rid for rid, reason in h.backend.killed if reason is ExitReason.STOPPED)


CHANGES: dict[str, tuple[Callable[[Database], None], int]] = {
    "scale-down": (scale_to_one, 1),  # (the change, how many replicas it drains)
    "rollout": (roll_out, 2),
}


@pytest.mark.parametrize("counted_by", ["gateway", "replica"])
@pytest.mark.parametrize("change", CHANGES)
def test_a_draining_replica_is_stopped_only_when_its_requests_have_finished(
    tmp_path: Path, db: Database, change: str, counted_by: str
) -> None:
    """`replica`: the request came through another gateway (this one counts 0), and only
    the replica's own count keeps it running."""
    make_change, drains = CHANGES[change]
    gateway, replicas = BusyGateway(), FakeReplicas()
    h = Harness(tmp_path, db, replicas, gateway)

    def in_flight(rid: str, n: int) -> None:
        if counted_by == "gateway":
            gateway.busy[rid] = n
        else:
            replicas.in_flight[h.host(rid)] = n

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        old = h.backend.live(1)
        assert len(old) == 2 and h.routed() == ["r1.test", "r2.test"]
        for rid in old:
            in_flight(rid, 1)  # a long request in flight to every replica
        make_change(db)
        for _ in range(4):  # a rollout first starts the new revision and waits for it
            await h.passes(ctl, 1)
            if out := draining(ctl):
                break
        assert len(out) == drains
        # Out of routing at once, but not stopped while its request runs: well past the
        # 0.1 s grace, for most of the drain timeout.
        await h.passes(ctl, int(DRAIN_TIMEOUT_S) - 8)
        assert draining(ctl) == out
        assert stopped(h) == []
        assert not {ctl.state.replicas[rid].host for rid in out} & set(h.routed())
        assert replica_events(db, EventKind.REPLICA_STOPPED) == []
        # The requests finish: the next pass stops the drained replicas.
        for rid in out:
            in_flight(rid, 0)
        await h.passes(ctl, 1)
        assert stopped(h) == out
        await h.passes(ctl, 1)
        assert sorted(replica_events(db, EventKind.REPLICA_STOPPED)) == out
        assert draining(ctl) == []

    h.run(steps)
    # A drained replica's end is not a crash: nothing restarted.
    assert replica_events(db, EventKind.REPLICA_CRASHED) == []
    assert replica_events(db, EventKind.REPLICA_RESTARTED) == []


def test_a_request_that_never_finishes_is_cut_at_the_drain_timeout(
    tmp_path: Path, db: Database
) -> None:
    gateway = BusyGateway()
    h = Harness(tmp_path, db, FakeReplicas(), gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        for rid in h.backend.live(1):
            gateway.busy[rid] = 1
        scale_to_one(db)
        await h.passes(ctl, 1)
        (out,) = draining(ctl)
        since = h.clock.monotonic()
        while h.clock.monotonic() - since < DRAIN_TIMEOUT_S - 1:
            await h.passes(ctl, 1)
        assert stopped(h) == [] and draining(ctl) == [out]
        await h.passes(ctl, 2)
        assert stopped(h) == [out]  # the request is still "in flight": the timeout decided

    h.run(steps)


def test_an_external_server_drains_on_the_gateways_count(tmp_path: Path, db: Database) -> None:
    """An external server (a framework `command`) reports no count of its own: it is not
    asked, and the local gateway's counter decides."""
    with db.unit_of_work() as uow:
        spec = uow.endpoints.get("spin").spec.model_copy(
            update={"framework": "command", "command": CommandSpec(command="serve")}
        )
        uow.endpoints.update_spec(
            "spin", spec, new_revision_model_ref="bundle:1", desired_replicas=2
        )
    gateway, replicas = BusyGateway(), FakeReplicas()
    h = Harness(tmp_path, db, replicas, gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        for rid in h.backend.live(2):
            gateway.busy[rid] = 1
            replicas.in_flight[h.host(rid)] = 0  # (never asked)
        scale_to_one(db)
        await h.passes(ctl, 3)
        (out,) = draining(ctl)
        assert stopped(h) == []
        gateway.busy[out] = 0
        await h.passes(ctl, 1)
        assert stopped(h) == [out]

    h.run(steps)
    assert replicas.asked_for("/podium/info") == []


class RefusingHolder(InProcessRoutingSource):
    """A routing source whose store refuses `refusals` publishes (the database is away)."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals = 0

    def publish(self, endpoints: Mapping[str, EndpointRoute]) -> RoutingTable:
        if self.refusals:
            self.refusals -= 1
            raise Unavailable("the database is unavailable: (test)")
        return super().publish(endpoints)


def test_a_replica_is_not_stopped_before_a_table_without_it_was_stored(
    tmp_path: Path, db: Database
) -> None:
    """A refused publish is retried by every pass (it is not remembered as published), and
    the drained replica, which every gateway still routes to meanwhile, is not stopped
    until a table without it was stored, plus the grace."""
    h = Harness(tmp_path, db, FakeReplicas())
    h.holder = holder = RefusingHolder()

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert len(h.backend.live(1)) == 2 and len(h.routed()) == 2
        holder.refusals = 4
        scale_to_one(db)
        for _ in range(4):  # the pass drains one, its publish is refused: the pass fails
            with pytest.raises(Unavailable):
                await h.passes(ctl, 1)
        (out,) = draining(ctl)
        assert h.host(out) in h.routed()  # every gateway still routes to it
        assert stopped(h) == []
        await h.passes(ctl, 1)  # stored at last: the grace starts now
        assert h.host(out) not in h.routed()
        assert stopped(h) == []
        await h.passes(ctl, 1)
        assert stopped(h) == [out]

    h.run(steps)
