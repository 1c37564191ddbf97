"""The metrics history's repository on SQLite and PostgreSQL: points replaced by their key,
read by series and range, rolled up by the rules of `store.metrics.combine`, pruned per
resolution, deleted with their endpoint; and the events read by time for the graphs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from podium.core.clock import FakeClock
from podium.core.histogram import quantile
from podium.core.phases import EndpointStatus, EventKind
from podium.core.service_counts import N_BUCKETS
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.events import EventRepo
from podium.store.metrics import SAMPLED, MetricPoint, combine

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, a multiple of 3600


def point(ts: int, replica: str = "", resolution: int = 10, **values: object) -> MetricPoint:
    p = MetricPoint("spin", replica, resolution, ts)
    for key, value in values.items():
        setattr(p, key, value)
    return p


def buckets(**at: int) -> list[int]:
    """Bucket counts: `b3=5` puts 5 in bucket 3."""
    out = [0] * N_BUCKETS
    for key, count in at.items():
        out[int(key[1:])] = count
    return out


def test_points_are_replaced_by_their_key_and_read_by_range(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.metrics.upsert([point(T0 + 10 * i, requests=i) for i in range(6)])
        uow.metrics.upsert([point(T0 + 20, requests=99), point(T0 + 20, "spin-r1", requests=1)])
    with database.unit_of_work(read_only=True) as uow:
        got = uow.metrics.points("spin", 10, T0 + 10, T0 + 40)
        assert [(p.ts, p.requests) for p in got] == [(T0 + 10, 1), (T0 + 20, 99), (T0 + 30, 3)]
        assert [
            p.requests for p in uow.metrics.points("spin", 10, 0, 2**40, replica="spin-r1")
        ] == [1]
        assert uow.metrics.points("spin", 60, 0, 2**40) == []
        assert uow.metrics.has_series("spin", "spin-r1")
        assert not uow.metrics.has_series("spin", "spin-r9")


def test_a_rollup_sums_counts_and_buckets_and_recomputes_percentiles(database: Database) -> None:
    first = point(
        T0,
        requests=10,
        ok=7,
        errors_5xx=3,
        latency_sum_ms=100.0,
        latency_buckets=buckets(b3=10),
        in_flight=1.0,
        held=4.0,
        cpu_percent=50.0,
        rss_bytes=100,
        ready=1,
        desired=2,
        bytes_in=5,
        gpu_util_percent=None,
    )
    second = point(
        T0 + 50,
        requests=30,
        ok=30,
        latency_sum_ms=900.0,
        latency_buckets=buckets(b6=28, b15=2),
        in_flight=3.0,
        held=0.0,
        cpu_percent=150.0,
        rss_bytes=70,
        ready=2,
        desired=3,
        bytes_in=7,
        gpu_util_percent=40.0,
        gpu_memory_bytes=2**30,
    )
    for p in (first, second):
        p.set_percentiles()
    with database.unit_of_work() as uow:
        uow.metrics.upsert([second, first, point(T0 + 60, requests=1000)])  # the next minute
        assert uow.metrics.roll_up(60, T0, 10) == 1
    with database.unit_of_work(read_only=True) as uow:
        (rolled,) = uow.metrics.points("spin", 60, 0, 2**40)
    summed = buckets(b3=10, b6=28, b15=2)
    assert (rolled.ts, rolled.requests, rolled.ok, rolled.errors_5xx) == (T0, 40, 37, 3)
    assert rolled.latency_buckets == summed and rolled.latency_sum_ms == 1000.0
    assert rolled.p50_ms == pytest.approx(quantile(summed, 0.5) * 1000)  # type: ignore[operator]
    assert rolled.p99_ms == pytest.approx(60_000.0)  # in +Inf: the highest bound
    assert (rolled.in_flight, rolled.held, rolled.cpu_percent) == (2.0, 2.0, 100.0)  # means
    assert rolled.rss_bytes == 100  # the largest
    assert (rolled.ready, rolled.desired) == (2, 3)  # the last
    assert rolled.bytes_in == 12
    assert (rolled.gpu_util_percent, rolled.gpu_memory_bytes) == (40.0, 2**30)  # known ones


def test_a_rollup_counts_an_endpoints_quiet_slots_as_zeros(database: Database) -> None:
    """Slots the sampler covered (its `SAMPLED` points) without a point of the endpoint are
    quiet ones: zeros in the endpoint's means, nothing for a replica's (it did not exist)."""
    sampled = [MetricPoint(SAMPLED, "", 10, T0 + 10 * k) for k in range(6)]
    busy = [
        point(T0, in_flight=6.0, held=3.0, cpu_percent=30.0, requests=5),
        point(T0 + 30, in_flight=0.0, held=0.0, cpu_percent=0.0),
        point(T0, replica="spin-r1", in_flight=4.0, cpu_percent=20.0),
    ]
    with database.unit_of_work() as uow:
        uow.metrics.upsert(sampled + busy)
        assert uow.metrics.roll_up(60, T0, 10) == 3  # the endpoint, its replica, SAMPLED
    with database.unit_of_work(read_only=True) as uow:
        (minute,) = uow.metrics.points("spin", 60, T0, T0 + 60)
        (replica,) = uow.metrics.points("spin", 60, T0, T0 + 60, replica="spin-r1")
        assert uow.metrics.sampled(60, T0, T0 + 60) == {T0}
        assert uow.metrics.sampled(10, T0 + 10, T0 + 40) == {T0 + 10, T0 + 20, T0 + 30}
    assert minute.requests == 5
    assert (minute.in_flight, minute.held, minute.cpu_percent) == (1.0, 0.5, 5.0)  # over 6
    assert (replica.in_flight, replica.cpu_percent) == (4.0, 20.0)  # its one point


def test_missing_rollups_are_the_intervals_with_finer_points_and_no_rollup(
    database: Database,
) -> None:
    with database.unit_of_work() as uow:
        uow.metrics.upsert([point(T0 + 10 * k, requests=1) for k in range(12)])  # 2 minutes
        uow.metrics.upsert([point(T0, resolution=60, requests=6)])  # the first rolled up
        uow.metrics.upsert([point(T0 + 3600 + 20, replica="spin-r1")])  # the next hour
        uow.metrics.upsert([point(T0 + 7200 + 10)])  # past `until`
    with database.unit_of_work(read_only=True) as uow:
        assert uow.metrics.missing_rollups(60, 10, T0, T0 + 7200) == [T0 + 60, T0 + 3600]
        assert uow.metrics.missing_rollups(3600, 60, T0, T0 + 7200) == [T0]


def test_combine_of_points_without_resources_leaves_them_unknown() -> None:
    rolled = combine([point(T0), point(T0 + 10)], 60, T0)
    assert rolled.cpu_percent is None and rolled.rss_bytes is None
    assert rolled.p50_ms is None  # no request: no percentile
    assert rolled.gpu_util_percent is None and rolled.gpu_memory_bytes is None


def test_prune_drops_one_resolution_by_age(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.metrics.upsert([point(T0 + 10 * i) for i in range(6)])
        uow.metrics.upsert([point(T0, resolution=60), point(T0 - 60, resolution=60)])
        assert uow.metrics.prune(10, T0 + 30) == 3
    with database.unit_of_work(read_only=True) as uow:
        assert [p.ts for p in uow.metrics.points("spin", 10, 0, 2**40)] == [
            T0 + 30,
            T0 + 40,
            T0 + 50,
        ]
        assert len(uow.metrics.points("spin", 60, 0, 2**40)) == 2  # another resolution


def test_prune_deletes_a_bounded_batch_per_call(database: Database) -> None:
    """Each call deletes at most `batch` points (the caller commits each batch on its own);
    less than `batch` says nothing is left. Other series and resolutions are kept."""
    with database.unit_of_work() as uow:
        uow.metrics.upsert([point(T0 + 10 * i) for i in range(7)])
        uow.metrics.upsert([point(T0 + 10 * i, replica="spin-r1") for i in range(4)])
        uow.metrics.upsert([point(T0, resolution=60)])
    got = []
    while True:
        with database.unit_of_work() as uow:
            got.append(uow.metrics.prune(10, T0 + 50, batch=3))
        if got[-1] < 3:
            break
    assert got == [3, 3, 3, 0]  # 5 + 4 points started before T0 + 50
    with database.unit_of_work(read_only=True) as uow:
        assert [p.ts for p in uow.metrics.points("spin", 10, 0, 2**40)] == [T0 + 50, T0 + 60]
        assert uow.metrics.points("spin", 10, 0, 2**40, replica="spin-r1") == []
        assert len(uow.metrics.points("spin", 60, 0, 2**40)) == 1


def test_deleting_an_endpoint_deletes_its_history(database: Database) -> None:
    spec = EndpointSpec.model_validate({"name": "spin", "model": "bundle:1", "framework": "python"})
    with database.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="t",
            path="/x",
        )
        uow.endpoints.create(
            spec, model_ref="bundle:1", status=EndpointStatus.PENDING, desired_replicas=1
        )
        uow.metrics.upsert([point(T0), point(T0, "spin-r1")])
    with database.unit_of_work() as uow:
        uow.endpoints.delete("spin")
    with database.unit_of_work(read_only=True) as uow:
        assert not uow.metrics.has_series("spin", "") and not uow.metrics.has_series(
            "spin", "spin-r1"
        )


def test_events_between_two_times_of_some_kinds(database: Database) -> None:
    clock = FakeClock()
    start = clock.now()
    with database.unit_of_work() as uow:
        events = EventRepo(uow.session, clock)
        events.add("spin", EventKind.SCALED, "1 -> 2")
        clock.advance(10)
        events.add("spin", EventKind.SPEC, "updated")
        events.add("spin", EventKind.REPLICA_READY, "r1 ready")
        clock.advance(10)
        events.add("spin", EventKind.SCALED, "2 -> 1")
        events.add("other", EventKind.SCALED, "elsewhere")
    kinds = (EventKind.SCALED, EventKind.REPLICA_READY)
    with database.unit_of_work(read_only=True) as uow:
        got = uow.events.between("spin", kinds, start, start + timedelta(seconds=20))
        assert [e.message for e in got] == ["1 -> 2", "r1 ready"]
        late = uow.events.between(
            "spin", kinds, start + timedelta(seconds=15), datetime.max.replace(tzinfo=UTC)
        )
        assert [e.message for e in late] == ["2 -> 1"]


def test_one_upsert_of_many_points_keeps_the_later_of_a_point_given_twice(
    database: Database,
) -> None:
    with database.unit_of_work() as uow:
        assert uow.metrics.upsert([]) == 0
        written = uow.metrics.upsert(
            [point(T0 + 10 * i, requests=i) for i in range(300)]
            + [point(T0, requests=7), point(T0 + 10, "spin-r1", requests=2)]
        )
        assert written == 301  # 300 + one replica point; (T0, "") twice counts once
    with database.unit_of_work() as uow:
        uow.metrics.upsert([point(T0 + 10, requests=42, latency_buckets=[1] * N_BUCKETS)])
    with database.unit_of_work(read_only=True) as uow:
        got = uow.metrics.points("spin", 10, T0, T0 + 30)
        assert [(p.ts, p.requests) for p in got] == [(T0, 7), (T0 + 10, 42), (T0 + 20, 2)]
        assert got[1].latency_buckets == [1] * N_BUCKETS
        assert [
            p.requests for p in uow.metrics.points("spin", 10, 0, 2**40, replica="spin-r1")
        ] == [2]
