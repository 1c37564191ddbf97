"""Summaries of the metrics history (`store.stats`) on SQLite and PostgreSQL: known points
in, the sums and the newest gauges out, in one query for many endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from podium.core.access import DEFAULT_PROJECT, endpoint_key
from podium.core.clock import FakeClock
from podium.store import Database
from podium.store.stats import _IN_LIST_MAX, DAY_S, RECENT_S, Gauges, Traffic
from podium.store.tables import MetricPointRow
from tests.support.live import counted_queries, insert, point

NOW = 1_800_000_000.0  # a multiple of 10: the slot holding NOW is open (not written yet)
END = NOW - 10  # the newest closed slot: the windows end with it
MINUTE_IN_DAY = (END - DAY_S) // 60 * 60 + 60  # the oldest minute rollup in the day
MINUTE_OUT_OF_DAY = MINUTE_IN_DAY - 60
HOUR_OF_MINUTE = MINUTE_IN_DAY // 3600 * 3600  # the hour rollup that minute is part of


def test_the_day_reads_whole_hours_from_their_rollups_and_the_minutes_around_them(
    database: Database,
) -> None:
    """Each part of the day from one resolution only: the sampled points from the last
    five minutes' minute on, the hour rollups of the whole hours before it, the minute
    rollups of the partial hours at both ends (values chosen so that reading any other
    row, or a row twice, changes the sum)."""
    cut = (END - RECENT_S) // 60 * 60
    first_hour = (END - DAY_S) // 3600 * 3600 + 3600  # the first hour starting in the day
    last_hour = cut // 3600 * 3600  # whole hours end here
    head = range(int(MINUTE_IN_DAY), int(first_hour), 60)  # minutes before the first hour
    tail = range(int(last_hour), int(cut), 60)  # minutes after the last whole hour
    hours = range(int(first_hour), int(last_hour), 3600)
    assert len(hours) == 23 and len(tail) > 0
    rows = [point("iris", "", m, resolution=60, requests=1) for m in (*head, *tail)]
    rows += [point("iris", "", h, resolution=3600, requests=1000) for h in hours]
    # the minutes of the whole hours and the hour holding `cut`: rolled up, never read
    rows += [point("iris", "", h + 60, resolution=60, requests=10**6) for h in hours]
    rows += [point("iris", "", last_hour, resolution=3600, requests=10**6)]
    rows += [point("iris", "", cut, requests=5), point("iris", "", END, requests=5)]
    rows += [point("iris", "", cut - 10, requests=10**6)]  # rolled up into a minute
    insert(database, *rows)
    with database.unit_of_work(read_only=True) as uow:
        got = uow.stats.traffic(["iris"], resolution=10, now=NOW)
    assert got[("iris", "")].requests == len(head) + len(tail) + 1000 * 23 + 10


def test_an_hour_just_closed_is_read_from_its_minutes_at_any_resolution(
    database: Database,
) -> None:
    """Just after an hour closes its rollup may not be written yet (the sample that crosses
    the hour writes it): the day reads the hour's minutes until it closed `RECENT_S` ago,
    with 60 s sampling as with 10 s."""
    hour = 1_800_000_000 - 3600 * 3  # a multiple of 3600
    for resolution in (10, 60):
        now = hour + 2 * resolution  # the hour's last slot is closed; no hour rollup
        starts = [hour - 3600 + 60 * k for k in range(60)]  # one request a minute
        rows = [point("iris", "", m, resolution=60, requests=1) for m in starts]
        if resolution < 60:  # the sampled points those minutes were rolled up from
            rows += [point("iris", "", m, resolution=resolution, requests=1) for m in starts]
        insert(database, *rows)
        with database.unit_of_work(read_only=True) as uow:
            got = uow.stats.traffic(["iris"], resolution=resolution, now=now)
        assert got[("iris", "")].requests == 60, resolution
        with database.engine.begin() as conn:  # the next resolution starts empty
            conn.exec_driver_sql("DELETE FROM metric_points")


def test_traffic_sums_the_day_and_the_last_five_minutes(database: Database) -> None:
    insert(
        database,
        # endpoint "iris": 3 recent points, 2 older ones in the day, 1 older than a day
        point("iris", "", END, requests=10, errors_5xx=1, latency_sum_ms=100.0),
        point("iris", "", END - 100, requests=20, errors_5xx=0, latency_sum_ms=500.0),
        point("iris", "", END - RECENT_S + 10, requests=30, errors_5xx=2, latency_sum_ms=900.0),
        point("iris", "", END - RECENT_S, requests=1000, errors_5xx=500, latency_sum_ms=9e6),
        # older than the last 5 minutes' minute: the day counts the minute rollups there,
        # and not the 10 s points those minutes were rolled up from (never twice)
        point("iris", "", MINUTE_IN_DAY, resolution=60, requests=7),
        point("iris", "", HOUR_OF_MINUTE, resolution=3600, requests=7),  # its hour's rollup
        point("iris", "", MINUTE_IN_DAY + 10, requests=7),
        point("iris", "", MINUTE_OUT_OF_DAY, resolution=60, requests=100_000),  # outside
        point("iris", "", NOW, requests=55_555),  # the open slot: not counted
        point("iris", "", END - 60, resolution=60, requests=99_999),  # a rollup: not counted
        # its replicas
        point("iris", "iris-r1-a", END, requests=6, latency_sum_ms=60.0),
        point("iris", "iris-r1-b", END, requests=4, latency_sum_ms=80.0, errors_5xx=1),
        # another endpoint, and one not asked for
        point("team.chat", "", END - 20, requests=3, latency_sum_ms=30.0),
        point("other", "", END, requests=9),
    )
    with database.unit_of_work(read_only=True) as uow, counted_queries(database) as queries:
        got = uow.stats.traffic(["iris", "team.chat", "nothing-yet"], resolution=10, now=NOW)
    assert len(queries) == 1  # every endpoint and replica in one query
    assert set(got) == {
        ("iris", ""),
        ("iris", "iris-r1-a"),
        ("iris", "iris-r1-b"),
        ("team.chat", ""),
    }
    iris = got[("iris", "")]
    assert iris == Traffic(
        requests=10 + 20 + 30 + 1000 + 7,
        recent_requests=60,
        recent_5xx=3,
        recent_latency_ms=1500.0,
    )
    assert iris.requests_per_min == 12.0  # 60 requests in 5 minutes
    assert iris.avg_latency_ms == 25.0
    assert iris.error_rate == 0.05
    assert got[("iris", "iris-r1-b")].avg_latency_ms == 20.0
    assert got[("team.chat", "")].requests_per_min == pytest.approx(0.6)


def steady(endpoint: str, resolution: int, per_slot: int, first: int, end: int) -> list[Any]:
    """What the sampler writes under a steady load: one point per slot, `first`..`end`."""
    return [
        point(endpoint, "", ts, resolution=resolution, requests=per_slot)
        for ts in range(first, end + 1, resolution)
    ]


@pytest.mark.parametrize("resolution", [5, 10, 30])
def test_a_steady_load_reads_its_exact_rate_between_two_samples(
    sqlite_url: str, resolution: int
) -> None:
    """On a fake clock: at any moment, the slot holding `now` is not written yet; the
    window of closed slots still reads exactly 36 requests per minute (not 3-7 % low)."""
    clock = FakeClock(start=0.0)
    db = Database(sqlite_url, clock=clock)
    db.migrate()
    try:
        start = int(clock.now().timestamp()) // 3600 * 3600 + 3600
        per_slot = 36 * resolution // 60  # 36 requests a minute
        for offset in (0.0, 0.4, resolution - 0.1):  # just after a boundary, mid-slot, late
            clock.advance(start + 600 + offset - clock.now().timestamp())
            now = clock.now().timestamp()
            end = (int(now) // resolution - 1) * resolution  # the newest closed slot
            with db.unit_of_work() as uow:
                uow.session.query(MetricPointRow).delete()
            insert(db, *steady("iris", resolution, per_slot, start, end))
            with db.unit_of_work() as uow:  # the minutes closed by now, as the sampler does
                for minute in range(start, int(now) // 60 * 60, 60):
                    uow.metrics.roll_up(60, minute, resolution)
            # 10 s points under a 5 s or 30 s interval: another resolution, never read
            if resolution != 10:
                insert(db, *steady("iris", 10, 1000, start, end - 10))
            with db.unit_of_work(read_only=True) as uow:
                got = uow.stats.traffic(["iris"], resolution=resolution)[("iris", "")]
            assert got.requests_per_min == 36.0, offset
            assert got.recent_requests == 180
            assert got.requests == per_slot * ((end - start) // resolution + 1)
    finally:
        db.dispose()


def test_traffic_of_named_replicas_only_and_of_nothing(database: Database) -> None:
    insert(
        database,
        point("iris", "", END, requests=2),
        point("iris", "iris-r1-a", END, requests=1),
        point("iris", "iris-r0-gone", END - 50, requests=1),
    )
    with database.unit_of_work(read_only=True) as uow:
        got = uow.stats.traffic(["iris"], replicas=["iris-r1-a"], resolution=10, now=NOW)
        assert uow.stats.traffic([], resolution=10, now=NOW) == {}
    assert set(got) == {("iris", ""), ("iris", "iris-r1-a")}


def test_an_idle_endpoint_has_no_average_and_no_error_rate() -> None:
    idle = Traffic(requests=40)  # it served earlier in the day, nothing lately
    assert (idle.requests_per_min, idle.avg_latency_ms, idle.error_rate) == (0.0, None, None)


def test_latest_gauges_are_the_newest_recent_point_per_key(database: Database) -> None:
    insert(
        database,
        point("iris", "", NOW - 20, cpu_percent=10.0, rss_bytes=100),
        point("iris", "", NOW - 10, cpu_percent=30.0, rss_bytes=300),
        point("iris", "iris-r1-a", NOW - 10, cpu_percent=30.0, rss_bytes=300, gpu_util_percent=5.0),
        point("iris", "", NOW, resolution=60, cpu_percent=99.0),  # a rollup: not "now"
        point("old", "", NOW - 600, cpu_percent=50.0, rss_bytes=1),  # too old to be "now"
    )
    with database.unit_of_work(read_only=True) as uow, counted_queries(database) as queries:
        got = uow.stats.latest_gauges(["iris", "old"], resolution=10, max_age_s=60, now=NOW)
    assert len(queries) == 1
    assert got == {
        ("iris", ""): Gauges(int(NOW - 10), 30.0, 300, None, None),
        ("iris", "iris-r1-a"): Gauges(int(NOW - 10), 30.0, 300, 5.0, None),
    }


def test_latest_gauges_read_the_sampled_resolution(database: Database) -> None:
    insert(
        database,
        point("iris", "", NOW - 5, resolution=5, cpu_percent=40.0, rss_bytes=400),
        point("iris", "", NOW - 10, cpu_percent=30.0, rss_bytes=300),  # 10 s: not sampled
    )
    with database.unit_of_work(read_only=True) as uow:
        got = uow.stats.latest_gauges(["iris"], resolution=5, max_age_s=60, now=NOW)
    assert got == {("iris", ""): Gauges(int(NOW - 5), 40.0, 400, None, None)}


@pytest.mark.parametrize("projects", [3, 20])
def test_the_traffic_of_many_endpoints_is_read_by_project_not_by_name(
    database: Database, projects: int
) -> None:
    """Past `_IN_LIST_MAX` endpoints the query names their projects (past `_PROJECTS_MAX`
    projects, none) instead of 1,000 keys; the figures are those read by name, and the
    points of endpoints not asked for (of the same projects or not) are left out."""
    names = [f"ep-{i:03d}" for i in range(_IN_LIST_MAX + 6)]
    keys = [
        endpoint_key(f"team{i % projects}" if i % 4 else DEFAULT_PROJECT, n)
        for i, n in enumerate(names)
    ]
    points = [point(k, "", END - 10 * (i % 20), requests=i + 1) for i, k in enumerate(keys)]
    points += [point(k, f"{k}-r", END, requests=2, latency_sum_ms=8.0) for k in keys[:5]]
    points += [point(k, "", MINUTE_IN_DAY, resolution=60, requests=7) for k in keys[:5]]
    points += [point(k, "", HOUR_OF_MINUTE, resolution=3600, requests=7) for k in keys[:5]]
    points += [point(n, "", END, requests=99) for n in ("not-asked", "team1.not-asked")]
    points += [point("other.stranger", "", END, requests=99)]  # a project not asked for
    insert(database, *points)
    with database.unit_of_work(read_only=True) as uow, counted_queries(database) as queries:
        got = uow.stats.traffic(keys, resolution=10, now=NOW)
        by_name = {
            key: traffic
            for chunk in range(0, len(keys), _IN_LIST_MAX)
            for key, traffic in uow.stats.traffic(
                keys[chunk : chunk + _IN_LIST_MAX], resolution=10, now=NOW
            ).items()
        }
    assert len(queries) == 3  # one query for the whole list (and the two by name)

    def bound(statement: str) -> int:  # parameters, in SQLite's and psycopg's marks
        return statement.count("?") + statement.count("%(")

    assert bound(queries[0]) < 40 < _IN_LIST_MAX < bound(queries[1])  # no name in the first
    assert got == by_name
    assert len(got) == len(keys) + 5
    assert got[(keys[5], "")] == Traffic(requests=6, recent_requests=6)
    assert got[(keys[0], "")] == Traffic(requests=8, recent_requests=1)
    assert got[(keys[0], f"{keys[0]}-r")] == Traffic(2, 2, 0, 8.0)
