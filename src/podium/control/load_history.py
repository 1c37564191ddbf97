"""An endpoint's recent load, as the autoscaler keeps it between controller passes.

The dense samples (`samples`) reach back one stable window (the panic window is never
longer): concurrency, requests/s, the task queue and the rules averaged over the stable
window (or a shorter window of their own) read them, at most `MIN_SPACING_S` apart. A rule
whose `window` is longer than the stable window keeps a series of its own
(`rule_samples`, per `rule_key`), spaced by its window / `MAX_SAMPLES`: a rule averaged over
an hour thins out its own figure only, never the request rate or the concurrency.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from podium.control.scale_policy import Sample, long_rule_windows
from podium.core.routing import EndpointLoad
from podium.core.scaling_spec import ScalingSpec

MIN_SPACING_S = 0.5  # samples closer than this are merged (passes run up to 10x a second)
MAX_SAMPLES = 600  # per series: a long rule window spaces its own samples further apart


def _spacing(keep: float) -> float:
    return max(MIN_SPACING_S, keep / MAX_SAMPLES)


@dataclass(slots=True)
class _RuleSeries:
    """One rule's figure over its own window. A point stands for the time since the one
    before it; merging a point keeps the time-weighted average of what it stood for."""

    key: str
    points: deque[Sample] = field(default_factory=deque)

    def add(self, now: float, value: float, keep: float) -> None:
        pts = self.points
        if len(pts) >= 2 and now - pts[-2].t < _spacing(keep):
            last = pts.pop()
            start = pts[-1].t
            if now > start:  # `last` stood for (start, last.t], `value` for (last.t, now]
                before = last.metrics.get(self.key, 0.0)
                value = (before * (last.t - start) + value * (now - last.t)) / (now - start)
        pts.append(Sample(now, metrics={self.key: value}))
        while len(pts) > 2 and pts[1].t <= now - keep:  # one older point bounds the first
            pts.popleft()


@dataclass(slots=True)
class LoadHistory:
    """One endpoint's recent samples (with the gateway's request counter at each)."""

    samples: deque[Sample] = field(default_factory=deque)
    counters: deque[int] = field(default_factory=deque)
    rules: dict[str, _RuleSeries] = field(default_factory=dict)

    def add(
        self,
        now: float,
        load: EndpointLoad,
        metrics: Mapping[str, float],
        spec: ScalingSpec,
        queue: tuple[int, int, float] = (0, 0, 0.0),
    ) -> None:
        """Append a sample; `queue` is (pending, running, oldest pending's age in s)."""
        keep = spec.stable_window
        # Replace the last sample while the interval since the one before it is shorter than
        # the spacing (comparing with the last one instead would keep replacing it as long
        # as passes come faster than the spacing, and the rate would then cover all the
        # time since the sample before: a request long ago would read as still arriving).
        if len(self.samples) >= 2 and now - self.samples[-2].t < _spacing(keep):
            self.samples.pop()
            self.counters.pop()
        rps = 0.0
        if self.samples:
            dt = now - self.samples[-1].t
            delta = load.requests - self.counters[-1]
            rps = delta / dt if dt > 0 and delta > 0 else 0.0  # a reset counter reads as 0
        pending, running, oldest_s = queue
        self.samples.append(
            Sample(now, load.in_flight, load.held, rps, dict(metrics), pending, running, oldest_s)
        )
        self.counters.append(load.requests)
        # Keep one sample older than the window: it bounds the first interval inside it.
        while len(self.samples) > 2 and self.samples[1].t <= now - keep:
            self.samples.popleft()
            self.counters.popleft()
        long = long_rule_windows(spec)
        for gone in [k for k in self.rules if k not in long]:
            del self.rules[gone]
        for key, window in long.items():
            series = self.rules.setdefault(key, _RuleSeries(key))
            series.add(now, metrics.get(key, 0.0), window)

    def rule_samples(self) -> dict[str, tuple[Sample, ...]]:
        """Per rule key with a window longer than the stable one, its own series."""
        return {key: tuple(s.points) for key, s in self.rules.items()}
