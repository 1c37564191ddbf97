"""The metrics history's sampler on fake time, from a known synthetic load: a scripted
gateway view whose cumulative counts are built from raw latencies and statuses, a real
SQLite store, the shared fake backend's CPU and memory figures.

The 10 s points carry each interval's counts; the 1 min rollup their sums; every
percentile equals `core.histogram.quantile` over the (summed) buckets and lies in the
bucket that holds the true percentile of the raw latencies."""

from __future__ import annotations

import asyncio
import bisect
import math
import random
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from podium.backends.base import ObservedReplica, ReplicaResources
from podium.control import metrics_history
from podium.control.history_metrics import HistoryCollector
from podium.control.loop import Controller
from podium.control.metrics_history import MetricsSampler, SampleOutcome, delta
from podium.control.starts import Starts
from podium.control.state import ControllerState
from podium.core.clock import FakeClock
from podium.core.histogram import quantile
from podium.core.metric_names import LATENCY_BUCKETS
from podium.core.phases import ReplicaState
from podium.core.routing import EndpointLoad
from podium.core.service_counts import (
    N_BUCKETS,
    ReplicaCounts,
    ServiceCounts,
    ServiceSnapshot,
)
from podium.core.settings import ObservabilitySettings, Settings
from podium.store import Database
from podium.store.metrics import MetricPoint
from podium.store.records import EndpointRecord
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, sqlite_url

__all__ = ["db", "sqlite_url"]

EPOCH = datetime(2026, 1, 1, tzinfo=UTC).timestamp()  # FakeClock's wall time at 0
INTERVAL = 10
PER_INTERVAL = 100
STATUSES = (200,) * 85 + (201,) * 3 + (404,) * 6 + (503,) * 4 + (0,) * 2  # per interval


@dataclass
class Tally:
    """Cumulative counts of one endpoint or replica, fed with raw requests."""

    requests: int = 0
    by_class: list[int] = field(default_factory=lambda: [0] * 6)
    latency_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * N_BUCKETS)
    bytes_in: int = 0
    bytes_out: int = 0

    def add(self, latency: float, status: int, size_in: int, size_out: int) -> None:
        self.requests += 1
        self.by_class[status // 100] += 1
        self.latency_sum += latency
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, latency)] += 1  # (lo, hi]
        self.bytes_in += size_in
        self.bytes_out += size_out

    def counts(self) -> ServiceCounts:
        return ServiceCounts(
            requests=self.requests,
            by_class=tuple(self.by_class),  # type: ignore[arg-type]
            latency_sum=self.latency_sum,
            latency_buckets=tuple(self.buckets),
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )


class ScriptedGateway:
    """A `GatewayView` whose counts are what the test served through it."""

    def __init__(self, endpoint: str, replicas: tuple[str, ...]) -> None:
        self.endpoint, self.replicas = endpoint, replicas
        self.tally = Tally()
        self.per_replica = {r: Tally() for r in replicas}
        self.load = EndpointLoad()
        self.in_flight: dict[str, int] = {}
        self.clock_s = 0.0
        self.succeeded = 0

    def serve(self, latencies: list[float], statuses: tuple[int, ...]) -> None:
        for i, (latency, status) in enumerate(zip(latencies, statuses, strict=True)):
            self.tally.add(latency, status, 100, 1000)
            self.per_replica[self.replicas[i % len(self.replicas)]].add(latency, status, 100, 1000)

    def outstanding(self, replica_id: str) -> int:
        return self.in_flight.get(replica_id, 0)

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return {self.endpoint: self.load}

    def service_snapshot(self) -> ServiceSnapshot:
        return ServiceSnapshot(
            taken_at=self.clock_s,
            endpoints={self.endpoint: self.tally.counts()},
            replicas={
                r: ReplicaCounts(self.endpoint, t.counts()) for r, t in self.per_replica.items()
            },
        )


def raw_latencies(rng: random.Random, n: int) -> list[float]:
    """Seconds, spread over many buckets (a few past the last bound)."""
    return [min(rng.lognormvariate(-3.0, 1.6), 90.0) for _ in range(n)]


def true_quantile(values: list[float], q: float) -> float:
    """The nearest-rank q-quantile of the raw values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def bucket_of(seconds: float) -> int:
    return bisect.bisect_left(LATENCY_BUCKETS, seconds)


def assert_within_true_bucket(point_ms: float | None, raw: list[float], q: float) -> None:
    """The stored percentile lies in the bucket holding the raw values' true percentile."""
    assert point_ms is not None
    true = true_quantile(raw, q)
    index = bucket_of(true)
    if index == len(LATENCY_BUCKETS):  # +Inf: the highest bound is reported
        assert point_ms == LATENCY_BUCKETS[-1] * 1000
        return
    lower = LATENCY_BUCKETS[index - 1] if index else 0.0
    assert lower * 1000 <= point_ms <= LATENCY_BUCKETS[index] * 1000 + 1e-9


def tracked_state(endpoint: str, replicas: tuple[str, ...]) -> ControllerState:
    state = ControllerState(starts=Starts(lambda endpoint=None: None))
    for rid in replicas:
        obs = ObservedReplica(rid, endpoint, 1, "127.0.0.1", 9000, datetime.now(UTC), True)
        state.track(obs, restarts=0, now=0.0).state = ReplicaState.READY
    return state


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


def endpoint_record(db: Database) -> EndpointRecord:
    with db.unit_of_work(read_only=True) as uow:
        return uow.endpoints.get("spin")


def stored(db: Database, resolution: int, replica: str = "") -> list[MetricPoint]:
    with db.unit_of_work(read_only=True) as uow:
        return uow.metrics.points("spin", resolution, 0, 2**40, replica=replica)


@dataclass
class World:
    db: Database
    clock: FakeClock
    gateway: ScriptedGateway
    backend: FakeBackend
    sampler: MetricsSampler

    def at(self, wall: float) -> None:
        """Move the fake clock to this wall time (unix s)."""
        self.clock.advance(wall - self.clock.now().timestamp())

    def sample(self) -> bool:
        return asyncio.run(self.sampler.run([endpoint_record(self.db)]))


def world(tmp_path: Path, db: Database, obs: ObservabilitySettings | None = None) -> World:
    replicas = ("spin-r1", "spin-r2")
    clock = FakeClock()
    gateway = ScriptedGateway("spin", replicas)
    backend = FakeBackend()
    settings = Settings(home=tmp_path / "home", observability=obs or ObservabilitySettings())
    state = tracked_state("spin", replicas)
    sampler = MetricsSampler(settings, db, clock, gateway, backend, state)
    return World(db, clock, gateway, backend, sampler)


def serve_intervals(w: World, rng: random.Random, start: float, n: int) -> list[list[float]]:
    """Baseline at `start` + 1, then `n` intervals of `PER_INTERVAL` requests, each sampled
    1 s after its end; returns the raw latencies of each interval."""
    w.at(start + 1)
    assert not w.sample()  # the baseline: no point yet
    served = []
    for k in range(n):
        latencies = raw_latencies(rng, PER_INTERVAL)
        w.gateway.serve(latencies, STATUSES)
        w.gateway.load = EndpointLoad(in_flight=k, held=2 * k)
        w.gateway.in_flight = {"spin-r1": k}
        w.backend.used = {
            "spin-r1": ReplicaResources(cpu_percent=10.0 * k, rss_bytes=1000 + k),
            "spin-r2": ReplicaResources(cpu_percent=5.0, rss_bytes=2000),
        }
        w.at(start + INTERVAL * (k + 1) + 1)
        assert w.sample()
        served.append(latencies)
    return served


def test_ten_second_points_and_the_minute_rollup_from_a_known_load(
    tmp_path: Path, db: Database
) -> None:
    w = world(tmp_path, db)
    minute = math.ceil((EPOCH + 1000) / 60) * 60 + 60
    served = serve_intervals(w, random.Random(12), minute, 6)

    points = stored(db, INTERVAL)
    assert [p.ts for p in points] == [minute + INTERVAL * k for k in range(6)]
    for k, (p, raw) in enumerate(zip(points, served, strict=True)):
        assert (p.requests, p.ok, p.errors_4xx, p.errors_5xx, p.cancelled) == (100, 88, 6, 4, 2)
        assert p.latency_sum_ms == approx(sum(raw) * 1000)
        assert sum(p.latency_buckets) == 100
        assert p.latency_buckets == [sum(bucket_of(x) == i for x in raw) for i in range(N_BUCKETS)]
        for q, value in ((0.5, p.p50_ms), (0.95, p.p95_ms), (0.99, p.p99_ms)):
            expected = quantile(p.latency_buckets, q)
            assert expected is not None and value == approx(expected * 1000)
            assert_within_true_bucket(value, raw, q)
        assert (p.in_flight, p.held, p.ready, p.desired) == (k, 2 * k, 2, 2)
        assert (p.bytes_in, p.bytes_out) == (100 * 100, 100 * 1000)
        assert p.cpu_percent == 10.0 * k + 5.0  # the endpoint: the sum of its replicas
        assert p.rss_bytes == 1000 + k + 2000
        assert p.gpu_util_percent is None and p.gpu_memory_bytes is None  # no GPU: absent

    r1 = stored(db, INTERVAL, "spin-r1")
    assert [p.requests for p in r1] == [50] * 6  # every other request went to r1
    assert [p.in_flight for p in r1] == list(range(6))
    assert [p.cpu_percent for p in r1] == [10.0 * k for k in range(6)]
    assert all(p.ready is None and p.desired is None for p in r1)  # endpoint figures only

    (rolled,) = stored(db, 60)
    everything = [x for raw in served for x in raw]
    assert rolled.ts == minute
    assert (rolled.requests, rolled.ok, rolled.errors_4xx, rolled.errors_5xx) == (600, 528, 36, 24)
    assert rolled.cancelled == 12
    assert rolled.latency_sum_ms == approx(sum(everything) * 1000)
    summed = [sum(p.latency_buckets[i] for p in points) for i in range(N_BUCKETS)]
    assert rolled.latency_buckets == summed
    for q, value in ((0.5, rolled.p50_ms), (0.95, rolled.p95_ms), (0.99, rolled.p99_ms)):
        expected = quantile(summed, q)
        assert expected is not None and value == approx(expected * 1000)
        assert_within_true_bucket(value, everything, q)
    assert rolled.in_flight == approx(2.5)  # the mean of 0..5
    assert rolled.cpu_percent == approx(sum(10.0 * k + 5.0 for k in range(6)) / 6)
    assert rolled.rss_bytes == 1005 + 2000  # the largest
    assert (rolled.ready, rolled.desired) == (2, 2)  # the last
    (rolled_r2,) = stored(db, 60, "spin-r2")
    assert rolled_r2.requests == 300


def test_the_hour_is_rolled_up_from_its_minutes_and_a_late_sample_is_one_point(
    tmp_path: Path, db: Database
) -> None:
    w = world(tmp_path, db)
    hour = math.ceil((EPOCH + 1000) / 3600) * 3600 + 3600
    serve_intervals(w, random.Random(3), hour - 30, 3)  # 3 intervals up to the hour
    (minute,) = stored(db, 60)
    assert (minute.ts, minute.requests) == (hour - 60, 300)
    (hour_point,) = stored(db, 3600)
    assert (hour_point.ts, hour_point.requests) == (hour - 3600, 300)
    # A pass that ran 35 s late: its interval is one point, the slots it spanned stay empty.
    w.gateway.serve(raw_latencies(random.Random(4), PER_INTERVAL), STATUSES)
    w.at(hour + 1 + 45)
    assert w.sample()
    assert [(p.ts, p.requests) for p in stored(db, INTERVAL)][-1] == (hour, 100)
    assert not w.sample()  # not due again within the same interval


def test_a_first_sample_rolls_up_what_a_stop_left_out(tmp_path: Path, db: Database) -> None:
    """The server stopped inside a minute (its 10 s points never rolled up) and before the
    hour closed (its minutes never rolled up): a new sampler's first write rolls them up,
    so the endpoint list's day totals (read from rollups) lose nothing."""
    hour = math.ceil((EPOCH + 1000) / 3600) * 3600 + 3600
    stopped = hour + 1800 + 30  # 30 s into a minute, half an hour into the hour
    with db.unit_of_work() as uow:
        uow.metrics.upsert(
            [MetricPoint("spin", "", 60, hour + 60 * k, requests=10) for k in range(30)]
        )
        uow.metrics.upsert(
            [
                MetricPoint("spin", "", INTERVAL, stopped - 30 + INTERVAL * k, requests=1)
                for k in range(3)
            ]
        )
    w = world(tmp_path, db)
    w.at(hour + 3 * 3600 + 1)  # back two hours later
    assert not w.sample()  # the baseline
    w.at(hour + 3 * 3600 + INTERVAL + 1)
    assert w.sample()
    minutes = {p.ts: p.requests for p in stored(db, 60)}
    assert minutes[stopped - 30] == 3  # the minute it stopped in
    (rolled_hour,) = [p for p in stored(db, 3600) if p.ts == hour]
    assert rolled_hour.requests == 30 * 10 + 3


def test_a_gateway_restart_takes_the_new_counts() -> None:
    before = Tally()
    for _ in range(50):
        before.add(0.02, 200, 10, 10)
    after = Tally()
    for _ in range(7):
        after.add(0.3, 500, 10, 10)
    counts = delta(after.counts(), before.counts())
    assert counts == after.counts()
    grown = Tally()
    for _ in range(50):
        grown.add(0.02, 200, 10, 10)
    grown.add(0.3, 500, 10, 10)
    one = delta(grown.counts(), before.counts())
    assert (one.requests, one.by_class[5], one.bytes_in) == (1, 1, 10)


def test_points_are_pruned_per_resolution_by_age(tmp_path: Path, db: Database) -> None:
    obs = ObservabilitySettings(metrics_10s_max_age_s=30, metrics_1m_max_age_s=120, prune_every_s=0)
    w = world(tmp_path, db, obs)
    minute = math.ceil((EPOCH + 1000) / 60) * 60 + 60
    serve_intervals(w, random.Random(5), minute, 12)  # two minutes
    # The last sample was at minute + 121: each resolution keeps what started since its age.
    assert [p.ts for p in stored(db, INTERVAL)] == [minute + 100, minute + 110]  # >= 91
    assert [p.ts for p in stored(db, 60)] == [minute + 60]  # >= 1
    assert [p.ts for p in stored(db, INTERVAL, "spin-r1")] == [minute + 100, minute + 110]


def test_a_failing_backend_or_gateway_never_stops_the_sampler(tmp_path: Path, db: Database) -> None:
    w = world(tmp_path, db)

    async def broken(replica_ids: object) -> dict[str, ReplicaResources]:
        raise OSError("no /proc")

    w.backend.resources = broken  # type: ignore[method-assign]
    minute = math.ceil((EPOCH + 1000) / 60) * 60 + 60
    serve_intervals(w, random.Random(6), minute, 1)
    (point,) = stored(db, INTERVAL)
    assert point.requests == 100 and point.cpu_percent is None  # counts kept, no figures

    def down() -> ServiceSnapshot:
        raise RuntimeError("gateway gone")

    w.gateway.service_snapshot = down  # type: ignore[method-assign]
    w.at(minute + 2 * INTERVAL + 1)
    assert w.sample() is False  # logged, not raised
    assert len(stored(db, INTERVAL)) == 1
    # Back: the next point covers both intervals, from the last sample written.
    del w.gateway.service_snapshot
    w.gateway.serve(raw_latencies(random.Random(8), PER_INTERVAL), STATUSES)
    w.at(minute + 3 * INTERVAL + 1)
    assert w.sample()
    assert [(p.ts, p.requests) for p in stored(db, INTERVAL)] == [(minute, 100), (minute + 10, 100)]


def test_the_controller_samples_its_endpoint_and_replicas(tmp_path: Path, db: Database) -> None:
    """Through the loop: ready replicas and the desired count come from the controller."""
    probes = FakeReplicas()
    gateway = ScriptedGateway("spin", ())
    h = Harness(tmp_path, db, probes, gateway)  # type: ignore[arg-type]

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        ids = sorted(ctl.state.replicas)
        gateway.replicas = tuple(ids)
        gateway.per_replica = {r: Tally() for r in ids}
        gateway.serve([0.01] * 40, (200,) * 40)
        h.backend.used = {ids[0]: ReplicaResources(cpu_percent=50.0, rss_bytes=10)}
        await h.passes(ctl, 25)

    h.run(steps)
    points = stored(db, INTERVAL)
    assert len(points) >= 2  # 28 s of passes: two intervals at least
    assert (points[-1].ready, points[-1].desired) == (2, 2)
    assert sum(p.requests for p in points) == 40
    with db.unit_of_work(read_only=True) as uow:
        ids = sorted(r.replica_id for r in uow.replicas.list(endpoint="spin"))
    first = stored(db, INTERVAL, ids[0])
    assert sum(p.requests for p in first) == 20 and first[-1].cpu_percent == 50.0
    assert stored(db, INTERVAL, ids[1])[-1].cpu_percent is None  # the backend measured none


@contextmanager
def failing_commits(database: Database, times: int) -> Iterator[list[int]]:
    """The next `times` commits of `database` fail (as a locked or lost store would make
    them); yields the count of commits attempted since."""
    attempts = [0]

    def commit(_conn: object) -> None:
        attempts[0] += 1
        if attempts[0] <= times:
            raise sqlite3.OperationalError("database is locked")

    event.listen(database.engine, "commit", commit)
    try:
        yield attempts
    finally:
        event.remove(database.engine, "commit", commit)


def test_a_rollup_whose_commit_failed_is_rolled_up_by_the_next_sample(
    tmp_path: Path, db: Database
) -> None:
    w = world(tmp_path, db)
    minute = math.ceil((EPOCH + 1000) / 60) * 60 + 60
    serve_intervals(w, random.Random(9), minute - 30, 2)  # up to minute - 9: no rollup yet
    assert stored(db, 60) == []
    w.gateway.serve(raw_latencies(random.Random(10), PER_INTERVAL), STATUSES)
    w.at(minute + 1)  # crosses the minute: its rollup is due
    rec = endpoint_record(db)
    with failing_commits(db, 1) as attempts:
        assert asyncio.run(w.sampler.run([rec])) is False  # logged, not raised
    assert attempts == [1] and stored(db, 60) == []
    assert [p.ts for p in stored(db, INTERVAL)] == [minute - 30, minute - 20]
    # The next sample writes the failed interval's counts and rolls the minute up then.
    w.at(minute + 11)
    assert w.sample()
    (rolled,) = stored(db, 60)
    assert (rolled.ts, rolled.requests) == (minute - 60, 300)
    assert sum(p.requests for p in stored(db, INTERVAL)) == 300
    assert w.sampler.samples == {SampleOutcome.OK: 3, SampleOutcome.FAILED: 1}


def test_a_long_prune_runs_in_bounded_batches_after_the_sample(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first prune after a long downtime: each batch deletes at most PRUNE_BATCH points
    in a transaction of its own, after the sample's; what one sample leaves (PRUNE_BATCHES
    reached) the next goes on with, though `prune_every_s` has not passed again."""
    monkeypatch.setattr(metrics_history, "PRUNE_BATCH", 4)
    monkeypatch.setattr(metrics_history, "PRUNE_BATCHES", 3)
    obs = ObservabilitySettings(metrics_10s_max_age_s=3600, prune_every_s=86400)
    w = world(tmp_path, db, obs)
    minute = math.ceil((EPOCH + 1000) / 60) * 60 + 7200
    old = [MetricPoint("gone", "", INTERVAL, minute - 7200 + 10 * i) for i in range(18)]
    with db.unit_of_work() as uow:
        uow.metrics.upsert(old)

    def left() -> int:
        with db.unit_of_work(read_only=True) as uow:
            return len(uow.metrics.points("gone", INTERVAL, 0, 2**40))

    steps: list[str] = []  # the writes and commits, in order

    def wrote(conn: object, cursor: object, statement: str, *args: object) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper()
        if verb == "DELETE":
            steps.append("delete")
        elif verb == "INSERT" and steps[-1:] != ["insert"]:
            steps.append("insert")

    def committed(conn: object) -> None:
        if steps[-1:] != ["commit"]:  # (a read-only unit of work commits nothing new)
            steps.append("commit")

    event.listen(db.engine, "after_cursor_execute", wrote)
    event.listen(db.engine, "commit", committed)
    try:
        serve_intervals(w, random.Random(11), minute, 1)  # baseline, then one sample
        # the sample's transaction, then each batch its own (stopped at PRUNE_BATCHES)
        batch = ["delete", "commit"]
        assert steps[-8:] == ["insert", "commit", *batch * 3]
        assert left() == 18 - 3 * 4
        steps.clear()
        w.at(minute + 2 * INTERVAL + 1)
        assert w.sample()
        assert left() == 0
        # still due: 10 s goes on (4, then the last 2), then 1 min; PRUNE_BATCHES again
        assert steps[-8:] == ["insert", "commit", *batch * 3]
        for k in (3, 4):  # then 10 s, 1 min, 1 h find nothing: done until due again
            steps.clear()
            w.at(minute + k * INTERVAL + 1)
            assert w.sample()
            assert steps.count("delete") == (3 if k == 3 else 0)
    finally:
        event.remove(db.engine, "after_cursor_execute", wrote)
        event.remove(db.engine, "commit", committed)
    assert [p.ts for p in stored(db, INTERVAL)] == [minute + 10 * k for k in range(4)]


def scrape(sampler: MetricsSampler) -> dict[str, dict[tuple[str, ...], float]]:
    """The collector's families as a Prometheus scrape parses them: name → labels → value."""
    registry = CollectorRegistry()
    registry.register(HistoryCollector(lambda: sampler))
    text = generate_latest(registry).decode()
    return {
        f.name: {tuple(s.labels.values()): s.value for s in f.samples}
        for f in text_string_to_metric_families(text)
    }


def test_the_latest_sample_is_on_metrics_and_gone_series_are_forgotten(
    tmp_path: Path, db: Database
) -> None:
    w = world(tmp_path, db)
    minute = math.ceil((EPOCH + 1000) / 60) * 60 + 60
    before = scrape(w.sampler)
    assert before["podium_replica_cpu_percent"] == {}  # nothing sampled yet: no series
    assert before["podium_metrics_samples"] == {("ok",): 0, ("failed",): 0}
    serve_intervals(w, random.Random(13), minute, 1)
    w.gateway.serve(raw_latencies(random.Random(14), PER_INTERVAL), STATUSES)
    w.backend.used = {
        "spin-r1": ReplicaResources(
            cpu_percent=150.0, rss_bytes=3_000, gpu_util_percent=40.0, gpu_memory_bytes=2**30
        ),
        "spin-r2": ReplicaResources(cpu_percent=20.0, rss_bytes=1_000),  # no GPU
    }
    w.at(minute + 2 * INTERVAL + 1)
    assert w.sample()
    got = scrape(w.sampler)
    assert got["podium_replica_cpu_percent"] == {
        ("spin", "spin-r1"): 150.0,
        ("spin", "spin-r2"): 20.0,
    }
    assert got["podium_replica_memory_rss_bytes"] == {
        ("spin", "spin-r1"): 3_000,
        ("spin", "spin-r2"): 1_000,
    }
    # GPU series only where a GPU was measured (NVML absent: none at all)
    assert got["podium_replica_gpu_utilization_percent"] == {("spin", "spin-r1"): 40.0}
    assert got["podium_replica_gpu_memory_bytes"] == {("spin", "spin-r1"): 2**30}
    assert got["podium_endpoint_replicas_ready"] == {("spin",): 2}
    assert got["podium_endpoint_replicas_desired"] == {("spin",): 2}
    assert got["podium_metrics_samples"] == {("ok",): 2, ("failed",): 0}

    # A replica stopped: its series go at the next sample; the endpoint deleted: all go.
    del w.sampler.state.replicas["spin-r2"]
    w.at(minute + 3 * INTERVAL + 1)
    assert w.sample()
    assert set(scrape(w.sampler)["podium_replica_cpu_percent"]) == {("spin", "spin-r1")}
    w.at(minute + 4 * INTERVAL + 1)
    assert asyncio.run(w.sampler.run([]))
    gone = scrape(w.sampler)
    assert gone["podium_replica_cpu_percent"] == {}
    assert gone["podium_endpoint_replicas_ready"] == {}
    assert gone["podium_metrics_samples"][("ok",)] == 4


def test_failed_samples_are_counted_on_metrics(tmp_path: Path, db: Database) -> None:
    w = world(tmp_path, db)
    minute = math.ceil((EPOCH + 1000) / 60) * 60 + 60
    serve_intervals(w, random.Random(15), minute, 1)

    def down() -> ServiceSnapshot:
        raise RuntimeError("gateway gone")

    w.gateway.service_snapshot = down  # type: ignore[method-assign]
    w.at(minute + 2 * INTERVAL + 1)
    assert w.sample() is False
    got = scrape(w.sampler)
    assert got["podium_metrics_samples"] == {("ok",): 1, ("failed",): 1}
    assert got["podium_endpoint_replicas_ready"] == {("spin",): 2}  # the last one written
