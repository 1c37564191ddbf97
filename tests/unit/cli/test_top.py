"""`podium top`: frames rendered from two known live answers into a fixed-width test
terminal, and the command itself against the real server app (its gateway's counts
scripted: the server wires the live source to the real gateway)."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from podium.cli import top as top_module
from podium.cli.top import Rates, frame, rates, watch
from podium.client import LiveCounts, LiveView
from podium.core.metric_names import LATENCY_BUCKETS
from podium.core.request_record import RecordBuffer
from podium.core.routing import EndpointLoad
from podium.core.service_counts import ReplicaCounts, ServiceCounts, ServiceSnapshot
from tests.support.live import buckets
from tests.unit.cli.conftest import Cli

BOUNDS = list(LATENCY_BUCKETS)


def counts(requests: int, fives: int = 0, **at: int) -> LiveCounts:
    return LiveCounts(
        requests=requests,
        by_class=[0, 0, requests - fives, 0, 0, fives],
        latency_buckets=list(buckets(**at)),
    )


def view(taken_at: float, iris: LiveCounts, replica: LiveCounts, *, dropped: int = 0) -> LiveView:
    return LiveView.model_validate(
        {
            "taken_at": taken_at,
            "endpoints": [
                {
                    "name": "iris",
                    "key": "iris",
                    "status": "running",
                    "ready": 1,
                    "desired": 2,
                    "in_flight": 3,
                    "held": 4,
                    "counts": iris.model_dump(),
                    "resources": {"at": taken_at, "cpu_percent": 150.0, "rss_bytes": 300 << 20},
                    "replicas": [
                        {
                            "replica_id": "iris-r1-000000",
                            "revision": 1,
                            "state": "ready",
                            "in_flight": 2,
                            "counts": replica.model_dump(),
                        }
                    ],
                },
                {
                    "name": "chat",
                    "key": "team.chat",
                    "status": "scaled_to_zero",
                    "ready": 0,
                    "desired": 0,
                },
            ],
            "records": {"offered": 500, "dropped": dropped, "buffered": 7},
        }
    )


# Between the two answers (2 s apart): 20 requests, 19 in bucket 3 (5..10 ms) and one in
# bucket 9 (0.5..1 s), one of them a 5xx; p95 is the 19th of 20: the top of bucket 3.
BEFORE = view(1000.0, counts(100, b3=100), counts(40, b4=40))
AFTER = view(1002.0, counts(120, 1, b3=119, b9=1), counts(50, b4=50), dropped=2)


def text_of(renderable: Any, width: int = 120) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def row(text: str, first: str) -> list[str]:
    [line] = [line for line in text.splitlines() if line.split()[:1] == [first]]
    return line.split()


def test_rates_from_two_cumulative_counts() -> None:
    got = rates(BEFORE.endpoints[0].counts, AFTER.endpoints[0].counts, 2.0, BOUNDS)
    assert got.requests_per_s == 10.0
    assert got.p95_ms == pytest.approx(10.0)  # rank 19 of 20 ends bucket 3 (10 ms)
    assert got.errors == 0.05
    assert rates(None, AFTER.endpoints[0].counts, 2.0, BOUNDS) == Rates()  # first poll
    idle = rates(BEFORE.endpoints[0].counts, BEFORE.endpoints[0].counts, 2.0, BOUNDS)
    assert (idle.requests_per_s, idle.p95_ms, idle.errors) == (0.0, None, None)


def test_a_gateway_restart_counts_from_zero() -> None:
    restarted = rates(counts(500, b3=500), counts(4, 2, b9=4), 2.0, BOUNDS)
    assert restarted.requests_per_s == 2.0  # the 4 counted since the restart
    assert restarted.errors == 0.5
    assert restarted.p95_ms is not None and 500 < restarted.p95_ms <= 1000


def test_the_endpoints_frame() -> None:
    out = text_of(frame(BEFORE, AFTER, None, 1.0))
    header = row(out, "NAME")
    assert header == [
        "NAME",
        "STATUS",
        "READY",
        "REQ/S",
        "P95",
        "ERR%",
        "IN",
        "FLIGHT",
        "HELD",
        "CPU",
        "MEMORY",
    ]
    assert row(out, "iris") == [
        "iris",
        "running",
        "1/2",
        "10.0",
        "10.0ms",
        "5.0%",
        "3",
        "4",
        "150%",
        "300.0",
        "MiB",
    ]
    assert row(out, "team.chat") == [
        "team.chat",
        "scaled_to_zero",
        "0/0",
        "0.0",
        "-",
        "-",
        "0",
        "0",
        "-",
        "-",
    ]
    assert "records: 500 offered, 2 dropped, 7 buffered" in out
    assert "iris-r1-000000" not in out  # replicas only for `top NAME`
    assert max(len(line) for line in out.splitlines()) <= 120


def test_the_first_frame_has_no_rates_yet() -> None:
    out = text_of(frame(None, BEFORE, None, 1.0))
    assert row(out, "iris")[3:6] == ["-", "-", "-"]


def test_dropped_records_are_shown_in_red() -> None:
    console = Console(record=True, width=120, force_terminal=True, color_system="standard")
    console.print(frame(BEFORE, AFTER, None, 1.0))
    styled = console.export_text(styles=True)
    assert "\x1b[1;31m2 dropped" in styled
    console = Console(record=True, width=120, force_terminal=True, color_system="standard")
    console.print(frame(None, BEFORE, None, 1.0))
    assert "\x1b[1;31m" not in console.export_text(styles=True)  # none dropped: plain


def test_the_replicas_frame_of_one_endpoint() -> None:
    out = text_of(frame(BEFORE, AFTER, "iris", 1.0))
    assert row(out, "REPLICA")[:4] == ["REPLICA", "STATE", "REV", "REQ/S"]
    # 10 upstream answers in 2 s, all in bucket 4 (10..25 ms): p95 at 95% of it
    assert row(out, "iris-r1-000000") == [
        "iris-r1-000000",
        "ready",
        "1",
        "5.0",
        "24.2ms",
        "0.0%",
        "2",
        "-",
        "-",
    ]


def test_watch_redraws_until_ctrl_c() -> None:
    polls = [BEFORE, AFTER, AFTER]
    shown: list[tuple[LiveView | None, LiveView]] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt

    def show(previous: LiveView | None, current: LiveView) -> str:
        shown.append((previous, current))
        return "frame"

    watch(lambda: polls.pop(0), show, 0.5, sleep=sleep)  # returns: Ctrl-C is a clean exit
    assert shown == [(None, BEFORE), (BEFORE, AFTER), (AFTER, AFTER)]
    assert sleeps == [0.5, 0.5, 0.5]


# ---------------------------------------------------------------- the command


class CountingGateway:
    """The live source: each snapshot 2 s after the previous, with 20 more requests, all
    in bucket 5 (25..50 ms): p95 = 25 + 25 * 19/20 = 48.75 ms."""

    def __init__(self) -> None:
        self.polls = 0
        self.records = RecordBuffer(capacity=10)

    def service_snapshot(self) -> ServiceSnapshot:
        self.polls += 1
        n = 20 * self.polls
        endpoint = ServiceCounts(
            requests=n, by_class=(0, 0, n, 0, 0, 0), latency_buckets=buckets(b5=n)
        )
        return ServiceSnapshot(
            taken_at=1000.0 + 2 * self.polls,
            endpoints={"iris": endpoint},
            replicas={"iris-r1-000000": ReplicaCounts("iris", endpoint)},
        )

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return {"iris": EndpointLoad(in_flight=1, held=0)}

    def outstanding(self, replica_id: str) -> int:
        return 1


@pytest.fixture
def live(cli: Cli) -> CountingGateway:
    gateway = CountingGateway()
    cli.api.podium.api.state.podium.live = gateway
    return gateway


def test_top_once_prints_one_frame_from_two_polls(
    cli: Cli, deployed: str, live: CountingGateway
) -> None:
    result = cli("top", "--once", "--interval", "0.1")
    assert result.exit_code == 0, result.output
    assert live.polls == 2
    assert cli.api.requests == ["GET /api/v1/live", "GET /api/v1/live"]
    assert row(result.stdout, "iris")[:6] == ["iris", "running", "1/1", "10.0", "48.8ms", "0.0%"]
    assert "records: 0 offered, 0 dropped, 0 buffered" in result.stdout


def test_top_name_shows_its_replicas(cli: Cli, deployed: str, live: CountingGateway) -> None:
    result = cli("top", "iris", "--once", "--interval", "0.1")
    assert result.exit_code == 0, result.output
    assert cli.api.requests == ["GET /api/v1/live?name=iris"] * 2
    assert row(result.stdout, "iris-r1-000000")[:5] == [
        "iris-r1-000000",
        "ready",
        "1",
        "10.0",
        "48.8ms",
    ]


def test_top_runs_until_ctrl_c_and_exits_0(
    cli: Cli, deployed: str, live: CountingGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sleep(_seconds: float) -> None:
        if live.polls >= 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(top_module, "time", SimpleNamespace(sleep=sleep))
    result = cli("top")
    assert result.exit_code == 0, result.output
    assert live.polls == 3
    assert "iris" in result.stdout


def test_top_without_a_gateway_says_why(cli: Cli, deployed: str) -> None:
    cli.api.podium.api.state.podium.live = None  # an API process with no gateway in it
    result = cli("top", "--once")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: live figures need the embedded gateway")


def test_top_of_an_unknown_endpoint(cli: Cli, deployed: str, live: CountingGateway) -> None:
    result = cli("top", "tulip", "--once")
    assert result.exit_code == 1
    assert "tulip" in result.stderr


def test_records_the_store_refused_are_shown_in_red() -> None:
    from podium.cli.top import footer
    from podium.core.live_schemas import LiveRecords

    console = Console(record=True, width=120, force_terminal=True, color_system="standard")
    console.print(footer(LiveRecords(offered=9, dropped=0, buffered=0, lost=3), 1000.0, 1.0))
    assert "\x1b[1;31m, 3 lost" in console.export_text(styles=True)
