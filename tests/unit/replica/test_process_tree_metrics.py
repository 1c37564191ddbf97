"""The replica's own memory metric (what the autoscaler's memory rule reads) counts its
children: a model that forks workers, or a `command` server under the replica."""

from __future__ import annotations

import psutil
from prometheus_client.core import Metric

from podium.replica.instruments import ProcessTreeCollector
from tests.support.memory_tree import MiB, parent_with_a_hungry_child

HELD_MB = 100


def memory_bytes(metrics: list[Metric]) -> float:
    (family,) = [m for m in metrics if m.name == "podium_replica_memory_bytes"]
    (sample,) = family.samples
    return float(sample.value)


def test_memory_metric_counts_the_children() -> None:
    collector = ProcessTreeCollector()
    own = psutil.Process().memory_info().rss
    with parent_with_a_hungry_child(HELD_MB):
        with_child = memory_bytes(list(collector.collect()))
    # The child's child holds HELD_MB MiB; 20 MiB of slack for this process's own RSS
    # moving between the two readings.
    assert with_child >= own + (HELD_MB - 20) * MiB
