"""The controller's Prometheus families: passes (ok and failed) and their durations,
scaling decisions by direction, and the replicas it tracks by state — read back through a
registry in the Prometheus text format, as a scraper would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from podium.backends.base import ObservedReplica
from podium.control.autoscaling import Autoscaling
from podium.control.loop import Controller
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointLoad, InProcessRoutingSource
from podium.core.settings import Settings
from podium.store import Database
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.test_autoscaling import (
    FakeGateway,
    deploy,
    one_pass,
    replica,
)
from tests.unit.control.test_autoscaling import clock as clock  # fixtures
from tests.unit.control.test_autoscaling import db as db
from tests.unit.control.test_autoscaling import gateway as gateway
from tests.unit.control.test_autoscaling import settings as settings
from tests.unit.control.test_autoscaling import sqlite_url as sqlite_url


def scrape(collector: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, by name and sorted labels."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class FailingOnce(FakeBackend):
    """A backend whose first poll fails (a pass that raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def poll(self) -> list[ObservedReplica]:
        if not self.failed:
            self.failed = True
            raise RuntimeError("the backend is unreachable")
        return await super().poll()


def _bundle(db: Database, tmp_path: Path) -> None:
    with db.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="test",
            path=str(tmp_path),
        )


def test_passes_are_counted_and_timed_failed_ones_apart(
    tmp_path: Path, settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    ctl = Controller(
        settings,
        db,
        FailingOnce(),
        InProcessRoutingSource(),
        gateway=gateway,
        clock=clock,
        http=FakeReplicas(refuse_all=True).client(),
    )

    async def passes() -> None:
        with pytest.raises(RuntimeError, match="unreachable"):
            await ctl.run_once()
        await ctl.run_once()
        await ctl.run_once()

    asyncio.run(passes())
    got = scrape(ctl.collector())
    assert got[("podium_controller_passes_total", (("outcome", "ok"),))] == 2
    assert got[("podium_controller_passes_total", (("outcome", "failed"),))] == 1
    assert got[("podium_controller_pass_seconds_count", ())] == 3
    assert got[("podium_controller_pass_seconds_bucket", (("le", "+Inf"),))] == 3
    assert got[("podium_controller_pass_seconds_sum", ())] > 0


def test_a_scale_up_counts_a_decision_and_shows_the_starting_replica(
    tmp_path: Path, settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    _bundle(db, tmp_path)
    deploy(db, desired=0, status=EndpointStatus.SCALED_TO_ZERO, min_replicas=0, max_replicas=2)
    ctl = Controller(
        settings,
        db,
        FakeBackend(),
        InProcessRoutingSource(),
        gateway=gateway,
        clock=clock,
        http=FakeReplicas(refuse_all=True).client(),  # the replica stays starting
    )
    asyncio.run(ctl.run_once())
    assert ("podium_controller_replicas", (("endpoint", "echo"), ("state", "starting"))) not in (
        scrape(ctl.collector())
    )
    gateway.loads["echo"] = EndpointLoad(held=1, requests=1)

    async def twice() -> None:
        await ctl.run_once()
        clock.advance(1)
        await ctl.run_once()

    asyncio.run(twice())
    got = scrape(ctl.collector())
    up = ("podium_controller_scaling_decisions_total", (("direction", "up"), ("endpoint", "echo")))
    assert got[up] == 1
    starting = ("podium_controller_replicas", (("endpoint", "echo"), ("state", "starting")))
    assert got[starting] == 1


def test_a_scale_down_counts_down_and_a_deleted_endpoint_drops_its_series(
    settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    deploy(
        db,
        desired=1,
        min_replicas=0,
        scale_to_zero_after="5s",
        stable_window="2s",
        panic_window="1s",
    )
    scaler = Autoscaling(settings, db, clock, gateway)
    ready = [replica("r1")]
    gateway.loads["echo"] = EndpointLoad(in_flight=0, requests=1)
    one_pass(scaler, db, ready)
    for _ in range(5):
        clock.advance(1)
        one_pass(scaler, db, ready)
    assert scaler.metrics.decisions == {("echo", "down"): 1}
    with db.unit_of_work() as uow:
        uow.endpoints.delete("echo")
    one_pass(scaler, db, [])
    assert scaler.metrics.decisions == {}
