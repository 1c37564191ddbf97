"""Quiet endpoints cost the metrics history no rows (issue 16: 1,000 endpoints at zero
wrote a point each every 10 s, 8.6 million rows a day, and the endpoint list's day totals
read them all): the sampler writes one point when an endpoint turns quiet and none while
it stays so, plus one point of its own series per sample, by which the readers tell a
quiet slot (zeros) from a gap (no sample)."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import replace
from pathlib import Path

from podium.api.services.metrics_history import history
from podium.control.metrics_history import MetricsSampler
from podium.control.starts import Starts
from podium.control.state import ControllerState
from podium.core.clock import FakeClock
from podium.core.routing import EndpointLoad
from podium.core.settings import Settings
from podium.store import Database
from podium.store.metrics import SAMPLED, MetricPoint
from tests.support.fake_backend import FakeBackend
from tests.unit.control.fakes import db, sqlite_url
from tests.unit.control.test_metrics_history import (
    INTERVAL,
    PER_INTERVAL,
    STATUSES,
    ScriptedGateway,
    endpoint_record,
    raw_latencies,
)

__all__ = ["db", "sqlite_url"]


class QuietWorld:
    """The fixture's endpoint `spin` with no replica and nothing desired (at zero)."""

    def __init__(self, tmp_path: Path, db: Database) -> None:
        self.db = db
        self.clock = FakeClock()
        self.gateway = ScriptedGateway("spin", ())
        state = ControllerState(starts=Starts(lambda endpoint=None: None))
        settings = Settings(home=tmp_path / "home")
        self.sampler = MetricsSampler(settings, db, self.clock, self.gateway, FakeBackend(), state)
        self.record = replace(endpoint_record(db), desired_replicas=0)
        # a minute boundary after the endpoint was created (the readers look no earlier)
        self.start = math.ceil(self.record.created_at.timestamp() / 60) * 60 + 60

    def serve(self, seed: int) -> None:
        """`PER_INTERVAL` requests answered by the gateway (at zero: no replica served)."""
        latencies = raw_latencies(random.Random(seed), PER_INTERVAL)
        for latency, status in zip(latencies, STATUSES, strict=True):
            self.gateway.tally.add(latency, status, 100, 1000)

    def sample_at(self, slot: int) -> bool:
        """Sample 1 s after the end of slot number `slot` (slot 0 starts at `start`)."""
        wall = self.start + INTERVAL * slot + 1
        self.clock.advance(wall - self.clock.now().timestamp())
        return asyncio.run(self.sampler.run([self.record]))

    def stored(self, resolution: int, endpoint: str = "spin") -> list[MetricPoint]:
        with self.db.unit_of_work(read_only=True) as uow:
            return uow.metrics.points(endpoint, resolution, 0, 2**40)


def test_a_quiet_endpoint_is_written_once_then_only_the_samplers_point(
    tmp_path: Path, db: Database
) -> None:
    w = QuietWorld(tmp_path, db)
    assert not w.sample_at(0)  # the baseline
    for slot in range(1, 6):
        assert w.sample_at(slot)
    # one point when it turned quiet (the first sample), none after
    assert [p.ts for p in w.stored(INTERVAL)] == [w.start]
    (first,) = w.stored(INTERVAL)
    assert (first.requests, first.ready, first.desired, first.cpu_percent) == (0, 0, 0, 0.0)
    # the sampler's own series has a point per sample
    sampled = [p.ts for p in w.stored(INTERVAL, SAMPLED)]
    assert sampled == [w.start + INTERVAL * k for k in range(5)]
    # traffic: a point again, then one quiet point, then none
    w.serve(1)
    w.gateway.load = EndpointLoad(in_flight=1)
    assert w.sample_at(6)
    w.gateway.load = EndpointLoad()
    assert w.sample_at(7)
    assert w.sample_at(8)
    points = w.stored(INTERVAL)
    assert [(p.ts - w.start) // INTERVAL for p in points] == [0, 5, 6]
    assert [p.requests for p in points] == [0, PER_INTERVAL, 0]
    assert points[1].in_flight == 1.0 and points[2].in_flight == 0.0


def test_the_history_reads_quiet_slots_as_zeros_and_unsampled_slots_as_gaps(
    tmp_path: Path, db: Database
) -> None:
    w = QuietWorld(tmp_path, db)
    w.sample_at(0)
    for slot in (1, 2, 3):
        w.sample_at(slot)
    w.serve(2)
    w.sample_at(4)  # slot 3 served
    w.sample_at(5)  # slot 4: quiet again (written)
    w.sample_at(9)  # a late sample: one point at slot 5 (covering 5-8); 6-9 are gaps
    with db.unit_of_work(read_only=True) as uow:
        got = history(
            uow,
            "spin",
            replica=None,
            series=["requests", "rpm", "ready", "desired", "in_flight", "cpu_percent"],
            since=w.start,
            until=w.start + 10 * INTERVAL,
            step=INTERVAL,
        )
    assert got.timestamps == [w.start + INTERVAL * k for k in range(10)]
    # slots 0-2 quiet (0 written, 1-2 not), 3 served, 4 quiet (written), 5 quiet (sampled
    # late, covering 5-8: one point at 5), 6-9 never sampled
    assert got.series["requests"] == [0, 0, 0, PER_INTERVAL, 0, 0, None, None, None, None]
    assert got.series["rpm"][:3] == [0.0, 0.0, 0.0]
    assert got.series["ready"] == [0, 0, 0, 0, 0, 0, None, None, None, None]
    assert got.series["desired"][1:3] == [0, 0]
    assert got.series["in_flight"][1:3] == [0.0, 0.0]
    assert got.series["cpu_percent"][1:3] == [0.0, 0.0]


def test_a_rollup_counts_the_quiet_slots_as_zeros_in_its_means(
    tmp_path: Path, db: Database
) -> None:
    w = QuietWorld(tmp_path, db)
    w.sample_at(0)
    for slot in range(1, 4):
        w.sample_at(slot)  # slots 0-2 quiet: slot 0 written, 1-2 not
    w.serve(3)
    w.gateway.load = EndpointLoad(in_flight=6, held=3)
    w.sample_at(4)  # slot 3 busy
    w.gateway.load = EndpointLoad()
    for slot in (5, 6, 7):
        w.sample_at(slot)  # slot 4 quiet (written), 5-6 not; slot 6's sample closes the minute
    (minute,) = w.stored(60)
    assert minute.ts == w.start
    assert minute.requests == PER_INTERVAL
    assert minute.in_flight == 1.0 and minute.held == 0.5  # 6 and 3 over six sampled slots
    assert minute.cpu_percent == 0.0
    (sampled,) = w.stored(60, SAMPLED)  # the sampler's series is rolled up too
    assert sampled.ts == w.start
