"""Figures for scaling rules, scraped from each ready replica's `/metrics`.

Only endpoints with `rules` are scraped. Each rule is read at its own `watch_period`
(default: the scraper's `interval_s`, 1 s): a replica is scraped when one of its rules is
due, and only the due rules' figures change. A rule is due a watch_period after its last
successful read; after a scrape that failed (no answer, not 200, unreadable) it is tried
again every `interval_s`, so a rule read hourly does not keep a stale figure for an hour.
Rates (cpu) and latency quantiles need two scrapes: the scraper keeps, per replica and
rule, the cumulative numbers it last read for that rule, so a cpu rule read every 10 s is
the rate over those 10 s, and the first scrape of a replica gives no cpu or latency figure.

    cpu             % of the instance type's CPUs (podium_replica_cpu_seconds_total)
    memory          % of the instance type's memory (podium_replica_memory_bytes)
    queue_depth     requests waiting for a slot (podium_replica_queued)
    p95_latency_ms  from podium_replica_request_seconds buckets since the last scrape
    custom:<gauge>  the gauge's value (summed over its label sets)
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from podium.control.scale_policy import rule_key
from podium.core.scaling_spec import ScalingRule

log = logging.getLogger("podium.control")

CPU = "podium_replica_cpu_seconds_total"
MEMORY = "podium_replica_memory_bytes"
QUEUED = "podium_replica_queued"
LATENCY_BUCKET = "podium_replica_request_seconds_bucket"


@dataclass(frozen=True, slots=True)
class Target:
    """One ready replica to scrape, with the size of its instance type."""

    replica_id: str
    base_url: str
    cpus: float
    memory_mb: int


@dataclass(frozen=True, slots=True)
class Scrape:
    """The cumulative numbers of one scrape: every sample summed over its labels, and the
    latency histogram's cumulative bucket counts (upper bound -> count)."""

    t: float
    values: Mapping[str, float] = field(default_factory=dict)
    buckets: Mapping[float, float] = field(default_factory=dict)


def parse(text: str, t: float) -> Scrape:
    values: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == LATENCY_BUCKET:
                le = float(s.labels.get("le", "inf"))
                buckets[le] = buckets.get(le, 0.0) + s.value
            else:
                values[s.name] = values.get(s.name, 0.0) + s.value
    return Scrape(t, values, buckets)


def figures(
    target: Target, now: Scrape, before: Scrape | None, rules: Iterable[ScalingRule]
) -> dict[str, float]:
    """This replica's figure for each rule (absent when it cannot be told yet)."""
    out: dict[str, float] = {}
    for rule in rules:
        value = _figure(rule, target, now, before)
        if value is not None and math.isfinite(value):
            out[rule_key(rule)] = max(0.0, value)
    return out


def _figure(rule: ScalingRule, target: Target, now: Scrape, before: Scrape | None) -> float | None:
    if rule.metric == "cpu":
        if before is None or CPU not in now.values or CPU not in before.values:
            return None
        dt = now.t - before.t
        used = now.values[CPU] - before.values[CPU]
        return 100.0 * max(0.0, used) / dt / target.cpus if dt > 0 else None
    if rule.metric == "memory":
        rss = now.values.get(MEMORY)
        return None if rss is None else 100.0 * rss / (target.memory_mb * 1024 * 1024)
    if rule.metric == "queue_depth":
        return now.values.get(QUEUED)
    if rule.metric == "p95_latency_ms":
        if before is None:
            return None
        q = quantile(0.95, now.buckets, before.buckets)
        return None if q is None else q * 1000.0
    assert rule.gauge is not None  # custom, validated by the spec
    return now.values.get(rule.gauge)


def quantile(q: float, now: Mapping[float, float], before: Mapping[float, float]) -> float | None:
    """The q-quantile of the requests between two cumulative histograms (linear within a
    bucket, like PromQL's histogram_quantile); 0 when no request finished in between."""
    bounds = sorted(now)
    if not bounds:
        return None
    counts = [now[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return 0.0
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cum in zip(bounds, counts, strict=True):
        if cum >= rank:
            if math.isinf(bound):
                return lower
            inside = cum - below
            return lower + (bound - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = bound, cum
    return lower


class Scraper:
    """Scrapes replicas concurrently and remembers, per replica and rule, when the rule was
    last read and the scrape it was read from."""

    def __init__(self, *, timeout_s: float = 1.0, interval_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self.interval_s = interval_s  # a rule's watch_period when it sets none
        self._tried: dict[tuple[str, str], float] = {}  # last attempt, answered or not
        self._read_at: dict[tuple[str, str], float] = {}  # last successful read
        self._last: dict[tuple[str, str], Scrape] = {}  # the scrape a figure came from
        self._figures: dict[str, dict[str, float]] = {}

    def period(self, rule: ScalingRule) -> float:
        return self.interval_s if rule.watch_period is None else rule.watch_period

    async def collect(
        self,
        http: httpx.AsyncClient,
        targets: Sequence[tuple[Target, Sequence[ScalingRule]]],
        now: float,
    ) -> dict[str, dict[str, float]]:
        """Per replica id, its figure for each of its rules (the last known one for a rule
        read less than its watch_period ago, or when the replica did not answer)."""
        due: list[tuple[Target, list[ScalingRule]]] = []
        for t, rules in targets:
            mine = [r for r in rules if self._due((t.replica_id, rule_key(r)), r, now)]
            if mine:
                due.append((t, mine))
                for r in mine:
                    self._tried[(t.replica_id, rule_key(r))] = now
        if due:
            texts = await asyncio.gather(*(self._get(http, t) for t, _ in due))
            for (t, rules), text in zip(due, texts, strict=True):
                if text is not None:
                    self._read(t, rules, text, now)
        live = {t.replica_id for t, _ in targets}
        for key in [k for k in self._tried if k[0] not in live]:
            self._tried.pop(key, None)
            self._read_at.pop(key, None)
            self._last.pop(key, None)
        for rid in [r for r in self._figures if r not in live]:
            del self._figures[rid]
        return {rid: dict(f) for rid, f in self._figures.items() if rid in live}

    def _due(self, key: tuple[str, str], rule: ScalingRule, now: float) -> bool:
        """A watch_period after the last read, and `interval_s` after a failed attempt."""
        read = now - self._read_at.get(key, -math.inf) >= self.period(rule)
        retry = min(self.interval_s, self.period(rule))
        return read and now - self._tried.get(key, -math.inf) >= retry

    def _read(self, t: Target, rules: Sequence[ScalingRule], text: str, now: float) -> None:
        try:
            scrape = parse(text, now)
        except ValueError as e:
            log.debug("%s: unreadable /metrics: %s", t.replica_id, e)
            return
        mine = self._figures.setdefault(t.replica_id, {})
        for rule in rules:
            key = (t.replica_id, rule_key(rule))
            got = figures(t, scrape, self._last.get(key), [rule])
            mine.pop(rule_key(rule), None)
            mine.update(got)
            self._last[key] = scrape
            self._read_at[key] = now

    async def _get(self, http: httpx.AsyncClient, target: Target) -> str | None:
        try:
            resp = await http.get(target.base_url + "/metrics", timeout=self.timeout_s)
        except httpx.HTTPError as e:
            log.debug("%s: /metrics not scraped: %s", target.replica_id, e)
            return None
        return resp.text if resp.status_code == 200 else None
