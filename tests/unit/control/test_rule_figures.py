"""Rule figures from a replica's /metrics text: parsing, rates, quantiles."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from podium.control.rule_figures import Scraper, Target, figures, parse, quantile
from podium.core.scaling_spec import ScalingRule

TARGET = Target("r1", "http://replica.test:9000", cpus=2, memory_mb=1024)


def text(cpu_s: float, rss_mb: float, *, queued: float = 0, buckets: str = "") -> str:
    return (
        "# TYPE podium_replica_cpu_seconds counter\n"
        f"podium_replica_cpu_seconds_total {cpu_s}\n"
        "# TYPE podium_replica_memory_bytes gauge\n"
        f"podium_replica_memory_bytes {rss_mb * 1024 * 1024}\n"
        "# TYPE podium_replica_queued gauge\n"
        f"podium_replica_queued {queued}\n"
        "# TYPE tokens_waiting gauge\n"
        'tokens_waiting{model="a"} 10\n'
        'tokens_waiting{model="b"} 32\n' + buckets
    )


def hist(counts: dict[str, float]) -> str:
    lines = ["# TYPE podium_replica_request_seconds histogram"]
    for le, n in counts.items():
        lines.append(f'podium_replica_request_seconds_bucket{{protocol="hf",le="{le}"}} {n}')
    return "\n".join(lines) + "\n"


RULES = [
    ScalingRule(metric="cpu", target=50),
    ScalingRule(metric="memory", target=80),
    ScalingRule(metric="queue_depth", target=4),
    ScalingRule(metric="custom", target=10, gauge="tokens_waiting"),
    ScalingRule(metric="p95_latency_ms", target=100),
]


def test_first_scrape_has_no_rates_yet() -> None:
    now = parse(text(10.0, 512, queued=3), t=100)
    out = figures(TARGET, now, None, RULES)
    assert out == {"memory": 50.0, "queue_depth": 3.0, "custom:tokens_waiting": 42.0}


def test_cpu_is_a_share_of_the_instance_types_cpus() -> None:
    before = parse(text(10.0, 512), t=100)
    now = parse(text(13.0, 512), t=102)  # 3 CPU seconds in 2 s on 2 CPUs
    assert figures(TARGET, now, before, RULES[:1]) == {"cpu": 75.0}


def test_p95_latency_from_the_buckets_between_scrapes() -> None:
    before = parse(text(0, 1, buckets=hist({"0.05": 0, "0.1": 0, "0.25": 0, "+Inf": 0})), 1)
    after = hist({"0.05": 50, "0.1": 90, "0.25": 100, "+Inf": 100})
    now = parse(text(0, 1, buckets=after), 2)
    (p95,) = figures(TARGET, now, before, RULES[4:]).values()
    assert p95 == pytest.approx(175.0)  # halfway through the 0.1..0.25 bucket


def test_quantile_edges() -> None:
    assert quantile(0.95, {}, {}) is None
    assert quantile(0.95, {1.0: 5, float("inf"): 5}, {1.0: 5, float("inf"): 5}) == 0.0
    assert quantile(0.95, {1.0: 0, float("inf"): 10}, {}) == 1.0  # all past the last bound


def test_scraper_scrapes_at_most_once_per_interval_and_forgets_gone_replicas() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "broken.test":
            return httpx.Response(500)
        return httpx.Response(200, text=text(1.0, 100, queued=2))

    broken = Target("r2", "http://broken.test:9000", cpus=1, memory_mb=512)
    rules = RULES[2:3]
    scraper = Scraper(interval_s=1.0)

    async def run() -> list[dict[str, dict[str, float]]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            both = [(TARGET, rules), (broken, rules)]
            first = await scraper.collect(http, both, now=10.0)
            second = await scraper.collect(http, both, now=10.5)  # too soon: cached
            third = await scraper.collect(http, [(TARGET, rules)], now=11.0)
            return [first, second, third]

    first, second, third = asyncio.run(run())
    assert first == second == third == {"r1": {"queue_depth": 2.0}}
    assert calls == ["replica.test", "broken.test", "replica.test"]


def test_each_rule_is_read_at_its_own_watch_period_and_a_rate_spans_it() -> None:
    """queue_depth every second (the default), cpu every 10 s: the cpu figure stays between
    its readings and is the rate over the whole 10 s, not over the last second."""
    cpu_at = {10.0: 0.0, 11.0: 1.0, 12.0: 1.0, 20.0: 10.0}  # CPU seconds used by then
    now = [10.0]
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(now[0])
        return httpx.Response(200, text=text(cpu_at[now[0]], 100, queued=now[0]))

    rules = [ScalingRule(metric="cpu", target=50, watch_period=10), RULES[2]]
    scraper = Scraper(interval_s=1.0)

    async def run() -> list[dict[str, float]]:
        out = []
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            for t in (10.0, 10.5, 11.0, 12.0, 20.0):
                now[0] = t
                out.append((await scraper.collect(http, [(TARGET, rules)], now=t))["r1"])
        return out

    at10, at10_5, at11, at12, at20 = asyncio.run(run())
    assert calls == [10.0, 11.0, 12.0, 20.0]  # 10.5: nothing due, no request
    assert at10 == at10_5 == {"queue_depth": 10.0}  # no cpu rate from one reading
    assert at11 == {"queue_depth": 11.0}
    assert at12 == {"queue_depth": 12.0}
    assert at20 == {"queue_depth": 20.0, "cpu": 50.0}  # 10 CPU s in 10 s on 2 CPUs


def test_a_failed_read_is_retried_at_the_scrapers_interval_not_the_watch_period() -> None:
    """A rule read hourly whose scrape fails is tried again a second later (the scraper's
    interval), not an hour later with the old figure standing meanwhile."""
    answers = iter([httpx.Response(200, text=text(1.0, 100, queued=2)), httpx.Response(500)])
    calls: list[float] = []
    now = [0.0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(now[0])
        return next(answers, httpx.Response(200, text=text(1.0, 100, queued=7)))

    rules = [ScalingRule(metric="queue_depth", target=4, watch_period=3600)]
    scraper = Scraper(interval_s=1.0)

    async def run() -> list[dict[str, float]]:
        out = []
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            for t in (10.0, 3610.0, 3610.5, 3611.0, 3612.0):
                now[0] = t
                out.append((await scraper.collect(http, [(TARGET, rules)], now=t))["r1"])
        return out

    figures_at = asyncio.run(run())
    assert calls == [10.0, 3610.0, 3611.0]  # 3610 failed: tried again a second later
    assert [f["queue_depth"] for f in figures_at] == [2.0, 2.0, 2.0, 7.0, 7.0]


def test_a_watch_period_must_be_a_second_or_more() -> None:
    for bad, says in (
        ({"watch_period": 0.5}, "greater than or equal to 1"),
        ({"watch_period": "soon"}, "is not a duration"),
    ):
        with pytest.raises(ValueError, match=re.escape(says)):
            ScalingRule.model_validate({"metric": "cpu", "target": 50, **bad})
    rule = ScalingRule.model_validate(
        {"metric": "cpu", "target": 50, "window": "2m", "watch_period": "15s"}
    )
    assert (rule.window, rule.watch_period) == (120.0, 15.0)
