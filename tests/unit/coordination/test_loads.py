"""`GatewayReporter` rows summed by `ClusterGatewayView` on the real PostgreSQL server: two
gateways add up, a departed or restarted gateway's counts stay counted (the controller's
differences never go negative), stale reports hold no requests, an unreadable row is
neither counted twice nor taken for a departure, and reading the view never queries (its
own thread refreshes it)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text

from podium.coordination.loads import ClusterGatewayView, GatewayReporter, new_gateway_id
from podium.core.errors import Unavailable
from podium.core.routing import EndpointLoad
from podium.core.service_counts import ReplicaCounts, ServiceCounts, ServiceSnapshot
from podium.store import Database
from tests.support.live import buckets
from tests.unit.coordination.helpers import DEADLINE_S, wait_for

pytestmark = pytest.mark.postgres


@dataclass
class Counting:
    """A gateway's figures as a test sets them (what `gateway.app.Gateway` reports)."""

    requests: int = 0  # of endpoint `iris`, all through replica `r1`
    in_flight: int = 0
    held: int = 0
    by_revision: dict[int, int] = field(default_factory=dict)

    def service_snapshot(self) -> ServiceSnapshot:
        counts = ServiceCounts(
            requests=self.requests,
            by_class=(0, 0, self.requests, 0, 0, 0),
            latency_sum=0.1 * self.requests,
            latency_buckets=buckets(b3=self.requests),
            bytes_in=10 * self.requests,
            bytes_out=20 * self.requests,
        )
        return ServiceSnapshot(
            taken_at=1.0, endpoints={"iris": counts}, replicas={"r1": ReplicaCounts("iris", counts)}
        )

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return {
            "iris": EndpointLoad(
                in_flight=self.in_flight,
                held=self.held,
                requests=self.requests,
                succeeded=self.requests,
                succeeded_by_revision=dict(self.by_revision),
            )
        }

    def outstanding(self, replica_id: str) -> int:
        return self.in_flight if replica_id == "r1" else 0

    def outstanding_all(self) -> Mapping[str, int]:
        return {"r1": self.in_flight} if self.in_flight else {}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def totals(view: ClusterGatewayView) -> tuple[int, int, int, int, int]:
    """(endpoint requests, replica requests, in flight, held, outstanding r1), refreshed."""
    view.refresh()
    snap = view.service_snapshot()
    load = view.load_snapshot()["iris"]
    return (
        snap.endpoints["iris"].requests,
        snap.replicas["r1"].counts.requests,
        load.in_flight,
        load.held,
        view.outstanding("r1"),
    )


def test_two_gateways_add_up_and_reading_never_queries(pg: Database) -> None:
    a, b = Counting(10, 2, 1, {1: 10}), Counting(5, 1, 0, {1: 3, 2: 2})
    GatewayReporter(pg, "a", a).report()
    GatewayReporter(pg, "b", b).report()
    view = ClusterGatewayView(pg)
    assert view.live_gateways() == 0 and view.load_snapshot() == {}  # not refreshed yet
    assert totals(view) == (15, 15, 3, 1, 3)
    snap = view.service_snapshot()
    assert snap.endpoints["iris"].latency_buckets == buckets(b3=15)
    assert snap.endpoints["iris"].by_class == (0, 0, 15, 0, 0, 0)
    assert snap.endpoints["iris"].bytes_out == 300
    assert view.load_snapshot()["iris"].succeeded_by_revision == {1: 13, 2: 2}
    assert view.live_gateways() == 2
    assert view.queries == 1  # everything above came from the one refresh
    a.requests = 20
    GatewayReporter(pg, "a", a).report()
    assert view.outstanding("r1") == 3 and view.service_snapshot().endpoints["iris"].requests == 15
    assert view.queries == 1


def test_a_departed_or_restarted_gateways_counts_stay_counted(pg: Database) -> None:
    a, b = Counting(10, 2), Counting(5, 1)
    GatewayReporter(pg, "a", a).report()
    gone = GatewayReporter(pg, "b", b)
    gone.report()
    clock = Clock()
    view = ClusterGatewayView(pg, clock=clock)
    assert totals(view) == (15, 15, 3, 0, 3)
    gone.close()  # deletes its row: it holds nothing now, what it counted stays
    assert totals(view) == (15, 15, 2, 0, 2)
    assert view.live_gateways() == 1
    restarted = Counting(1, 1)  # the same id, a new process: counts from zero again
    again = GatewayReporter(pg, "b", restarted)
    again.report()
    assert totals(view) == (16, 16, 3, 0, 3)
    restarted.requests = 4  # it goes on counting
    again.report()
    assert totals(view) == (19, 19, 3, 0, 3)


def test_the_same_gateway_reporting_again_is_not_counted_twice(pg: Database) -> None:
    a = Counting(10, 2)
    reporter = GatewayReporter(pg, "a", a)
    reporter.report()
    view = ClusterGatewayView(pg)
    assert totals(view)[0] == 10
    a.requests = 12
    reporter.report()
    assert totals(view)[0] == 12


def test_stale_reports_hold_no_requests_but_keep_their_counts(pg: Database) -> None:
    a, silent = Counting(10, 2, 1), Counting(5, 4, 3)
    reporter = GatewayReporter(pg, "a", a)
    reporter.report()
    quiet = GatewayReporter(pg, "silent", silent)
    quiet.report()
    with pg.engine.begin() as conn:  # it stopped reporting 10 s ago (crashed, partitioned)
        conn.execute(
            text(
                "UPDATE gateway_reports SET reported_at = now() - interval '10 seconds' "
                "WHERE gateway_id = 'silent'"
            )
        )
    view = ClusterGatewayView(pg)
    assert totals(view) == (15, 15, 2, 1, 2)
    assert view.live_gateways() == 1
    silent.requests = 6
    quiet.report()  # back, with the same incarnation: its counts go on, not twice
    assert totals(view) == (16, 16, 6, 4, 6)
    assert view.live_gateways() == 2


def test_rows_silent_for_long_are_pruned_and_their_counts_kept(pg: Database) -> None:
    GatewayReporter(pg, "a", Counting(10)).report()
    GatewayReporter(pg, "dead", Counting(5, 2)).report()
    clock = Clock()
    view = ClusterGatewayView(pg, clock=clock)
    assert totals(view)[0] == 15
    with pg.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE gateway_reports SET reported_at = now() - interval '1 hour' "
                "WHERE gateway_id = 'dead'"
            )
        )
    clock.now += 61.0  # the view prunes once a minute
    assert totals(view) == (15, 15, 0, 0, 0)
    with pg.engine.connect() as conn:
        ids = conn.execute(text("SELECT gateway_id FROM gateway_reports")).scalars().all()
    assert ids == ["a"]


def test_the_threads_report_refresh_and_delete_the_row_on_close(pg: Database) -> None:
    gateway = Counting(3, 1)
    reporter = GatewayReporter(pg, new_gateway_id(), gateway, report_s=0.05)
    reporter.start()
    view = ClusterGatewayView(pg, refresh_s=0.05)
    view.start()
    try:
        wait_for(lambda: view.live_gateways() == 1, "the first report")
        gateway.requests = 7
        wait_for(lambda: view.service_snapshot().endpoints["iris"].requests == 7, "a later report")
        reporter.close()
        wait_for(lambda: view.live_gateways() == 0, "the row deleted by the reporter's thread")
        assert view.service_snapshot().endpoints["iris"].requests == 7
    finally:
        reporter.close()
        view.close()
    with pg.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM gateway_reports")).scalar_one() == 0


class SlowCounting(Counting):
    """A gateway whose snapshot takes long: `close` comes while a report is in progress."""

    def __init__(self) -> None:
        super().__init__(1)
        self.inside = threading.Event()
        self.release = threading.Event()

    def outstanding_all(self) -> Mapping[str, int]:
        self.inside.set()
        self.release.wait(DEADLINE_S)
        return super().outstanding_all()


def test_a_report_in_progress_at_close_does_not_put_the_row_back(pg: Database) -> None:
    gateway = SlowCounting()
    reporter = GatewayReporter(pg, "slow", gateway, report_s=0.05)
    reporter.start()
    assert gateway.inside.wait(DEADLINE_S)
    reporter.close(timeout=0.05)  # the thread is still inside report()
    gateway.release.set()  # the report goes on: its UPSERT, then the thread's DELETE
    reporter.close()  # waits for the thread now
    with pg.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM gateway_reports")).scalar_one() == 0


def test_an_unreadable_row_keeps_its_last_report_and_is_not_counted_twice(
    pg: Database,
) -> None:
    a = Counting(10, 1)
    reporter = GatewayReporter(pg, "a", a)
    reporter.report()
    view = ClusterGatewayView(pg)
    assert totals(view) == (10, 10, 1, 0, 1)
    with pg.engine.begin() as conn:  # a report this version cannot read (version skew)
        conn.execute(text("""UPDATE gateway_reports SET body = '{"v": 99}'"""))
    assert totals(view) == (10, 10, 1, 0, 1)  # its last report: not folded as departed
    a.requests = 12
    reporter.report()  # readable again, the same incarnation
    assert totals(view) == (12, 12, 1, 0, 1)  # not 22: it was never folded


def test_the_base_forgets_endpoints_no_report_names(pg: Database) -> None:
    gone = GatewayReporter(pg, "gone", Counting(5))
    gone.report()
    clock = Clock()
    view = ClusterGatewayView(pg, clock=clock)
    assert totals(view)[0] == 5
    gone.close()  # folded into the base at the next refresh
    view.refresh()
    assert view.service_snapshot().endpoints["iris"].requests == 5
    clock.now += 301.0  # FORGET_AFTER_S without a report naming `iris`
    view.refresh()
    assert view.service_snapshot().endpoints == {} and view.load_snapshot() == {}


def test_an_unreachable_database_keeps_the_last_sum() -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    view = ClusterGatewayView(db)
    with pytest.raises(Unavailable):
        view.refresh()
    assert view.load_snapshot() == {}
    assert view.outstanding("r1") == 0
