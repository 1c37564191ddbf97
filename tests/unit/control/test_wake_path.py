"""A wake at 1,000 endpoints is not held up by the other 999 (issue 16: 0.13-0.21 s
against 0.06 s on a server with one endpoint): a replica the probes find ready is routed
before the pass lists, scales and reconciles every endpoint, and the endpoints the
autoscaler just scaled are reconciled (their replicas started) before the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.control.loop import Controller
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointLoad
from podium.store import Database
from podium.store.endpoints import EndpointRepo
from podium.store.records import EndpointRecord
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, add_bundle, db, sqlite_url
from tests.unit.control.test_autoscaling import FakeGateway, deploy

__all__ = ["db", "sqlite_url"]


def test_a_replica_found_ready_is_routed_before_the_pass_reads_the_store(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 1)  # both replicas started, not probed yet
        assert h.routed() == []

        monkeypatch.setattr(EndpointRepo, "list", _store_away)
        h.clock.advance(1)
        with pytest.raises(RuntimeError, match="the store is away"):
            await ctl.run_once()  # probes ran first: ready, and routed already
        assert h.routed() == ["r1.test", "r2.test"]

    h.run(steps)


@pytest.mark.parametrize("change", ["paused", "deleted"])
def test_an_early_route_follows_the_store_not_the_last_pass(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The endpoint of a replica found ready is read again before it is routed early: one
    paused since the last pass is published paused (the gateway refuses its requests),
    the replicas of one deleted are not routed (another server's API deleted it: this
    holder never saw its remove)."""
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 1)  # both replicas started, not probed yet
        with db.unit_of_work() as uow:
            if change == "paused":
                uow.endpoints.set_status("spin", EndpointStatus.PAUSED, reason="paused by user")
            else:
                uow.endpoints.delete("spin")
        monkeypatch.setattr(EndpointRepo, "list", _store_away)
        h.clock.advance(1)
        with pytest.raises(RuntimeError, match="the store is away"):
            await ctl.run_once()
        route = h.holder.table.endpoints.get("spin")
        if change == "paused":
            assert route is not None and route.status is EndpointStatus.PAUSED
        else:  # its replicas are never routed
            assert route is None or not route.replicas

    h.run(steps)


def _store_away(self: EndpointRepo, **kwargs: object) -> None:
    raise RuntimeError("the store is away")


def test_the_endpoints_just_scaled_are_reconciled_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'podium.db'}")
    database.migrate()
    add_bundle(database, tmp_path)
    for name in ("aaa", "bbb", "wake"):  # the store lists them in this order
        deploy(
            database,
            name,
            desired=0,
            status=EndpointStatus.SCALED_TO_ZERO,
            min_replicas=0,
            max_replicas=1,
        )
    gateway = FakeGateway()
    h = Harness(tmp_path, database, FakeReplicas(), gateway)
    order: list[str] = []
    reconcile = Controller._reconcile

    async def recorded(self: Controller, ep: EndpointRecord) -> None:
        order.append(ep.name)
        await reconcile(self, ep)

    monkeypatch.setattr(Controller, "_reconcile", recorded)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)  # all three at zero
        order.clear()
        gateway.loads["wake"] = EndpointLoad(held=1)
        await h.passes(ctl, 1)
        assert order == ["wake", "aaa", "bbb"]
        assert [s.endpoint for s in h.backend.started] == ["wake"]

    h.run(steps)


def test_a_woken_endpoint_starts_before_the_pass_lists_every_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wake lane: an endpoint the gateway holds requests for, woken by name, gets its
    decision, its start, its probe and its route from a fresh read of its own record,
    before the pass's list of every endpoint (which fails here, so only the lane can have
    done it)."""
    database = Database(f"sqlite:///{tmp_path / 'podium.db'}")
    database.migrate()
    add_bundle(database, tmp_path)
    for name in ("aaa", "wake"):
        deploy(
            database,
            name,
            desired=0,
            status=EndpointStatus.SCALED_TO_ZERO,
            min_replicas=0,
            max_replicas=2,
        )
    gateway = FakeGateway()
    h = Harness(tmp_path, database, FakeReplicas(), gateway)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)  # both at zero
        gateway.loads["wake"] = EndpointLoad(held=1)
        ctl.wake("wake")
        monkeypatch.setattr(EndpointRepo, "list", _store_away)
        h.clock.advance(1)
        with pytest.raises(RuntimeError, match="the store is away"):
            await ctl.run_once()
        # started, probed ready and routed, all before the list that fails
        assert [s.endpoint for s in h.backend.started] == ["wake"]
        assert len(h.holder.table.endpoints["wake"].replicas) == 1
        with database.unit_of_work(read_only=True) as uow:
            assert uow.endpoints.get("wake").desired_replicas == 1
            assert uow.endpoints.get("aaa").desired_replicas == 0

    h.run(steps)
