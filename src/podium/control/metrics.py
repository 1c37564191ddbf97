"""The controller's Prometheus metrics: its passes, its scaling decisions, its replicas.

The controller's thread only adds to plain counters (`ControllerMetrics`); the families
are built when the server's `/metrics` is scraped (`ControllerCollector.collect`, on the
server's event loop), reading the counters and a copy of the tracked replicas: ints and a
dict copied in one C call, safe to read from another thread under the GIL. Names are a
public interface (docs/metrics.md):

    podium_controller_passes_total{outcome}          passes run (ok | failed)
    podium_controller_pass_seconds                   histogram of a pass's duration
    podium_controller_scaling_decisions_total{endpoint,direction}
                                                     desired counts the autoscaler wrote
    podium_controller_replicas{endpoint,state}       replicas the controller tracks now
    podium_controller_leader                         1 while this process leads, else 0
    podium_controller_epoch                          the fencing number it leads under (0:
                                                     standing by)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from podium.control.tracked import TrackedReplica

# A pass is usually milliseconds; a slow store or backend makes it seconds.
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


class ControllerMetrics:
    """Counters the controller's thread adds to (no locks: one writer)."""

    def __init__(self) -> None:
        self.passes_ok = 0
        self.passes_failed = 0
        self.pass_seconds_sum = 0.0
        self.pass_buckets = [0] * (len(PASS_BUCKETS) + 1)  # the last one: above every bound
        self.decisions: dict[tuple[str, Direction], int] = {}
        self.epoch = 0  # the lease's fencing number while leading, 0 while standing by

    def led(self, epoch: int) -> None:
        """The controller took the lead with `epoch`, or lost it (0)."""
        self.epoch = epoch

    def pass_done(self, seconds: float, *, failed: bool = False) -> None:
        """One pass ended (`failed`: it raised) after `seconds`."""
        if failed:
            self.passes_failed += 1
        else:
            self.passes_ok += 1
        self.pass_seconds_sum += seconds
        self.pass_buckets[bisect_left(PASS_BUCKETS, seconds)] += 1

    def scaled(self, endpoint: str, before: int, after: int) -> None:
        """The autoscaler wrote a new desired count for `endpoint`."""
        if after == before:
            return
        key = (endpoint, Direction.UP if after > before else Direction.DOWN)
        self.decisions[key] = self.decisions.get(key, 0) + 1

    def forget(self, endpoint: str) -> None:
        """The endpoint is gone: its series go (a new one of that name starts at zero)."""
        for key in [k for k in self.decisions if k[0] == endpoint]:
            del self.decisions[key]


class ControllerCollector(Collector):
    """Renders `ControllerMetrics` and the replicas the controller tracks (`replicas()`)."""

    def __init__(
        self, metrics: ControllerMetrics, replicas: Callable[[], Mapping[str, TrackedReplica]]
    ) -> None:
        self._metrics = metrics
        self._replicas = replicas

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        m = self._metrics
        passes = CounterMetricFamily(
            "podium_controller_passes",
            "Controller passes (observe, decide, act, publish), by outcome.",
            labels=["outcome"],
        )
        passes.add_metric(["ok"], m.passes_ok)
        passes.add_metric(["failed"], m.passes_failed)
        yield passes
        yield GaugeMetricFamily(
            "podium_controller_leader",
            "1 while this process's controller leads (holds the lease), else 0.",
            value=1 if m.epoch else 0,
        )
        yield GaugeMetricFamily(
            "podium_controller_epoch",
            "The fencing number this controller leads under (0 while standing by).",
            value=m.epoch,
        )
        duration = HistogramMetricFamily(
            "podium_controller_pass_seconds", "How long a controller pass took."
        )
        cumulative, buckets = 0, []
        for bound, count in zip((*PASS_BUCKETS, float("inf")), list(m.pass_buckets), strict=True):
            cumulative += count
            buckets.append((_bound(bound), cumulative))
        duration.add_metric([], buckets, m.pass_seconds_sum)
        yield duration
        decisions = CounterMetricFamily(
            "podium_controller_scaling_decisions",
            "Desired replica counts the autoscaler wrote, by endpoint and direction.",
            labels=["endpoint", "direction"],
        )
        for (endpoint, direction), count in sorted(dict(m.decisions).items()):
            decisions.add_metric([endpoint, direction.value], count)
        yield decisions
        replicas = GaugeMetricFamily(
            "podium_controller_replicas",
            "Replicas the controller tracks now, by endpoint and state.",
            labels=["endpoint", "state"],
        )
        counts: dict[tuple[str, str], int] = {}
        for r in list(self._replicas().values()):
            key = (r.endpoint, r.state.value)
            counts[key] = counts.get(key, 0) + 1
        for (endpoint, state), count in sorted(counts.items()):
            replicas.add_metric([endpoint, state], count)
        yield replicas


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
