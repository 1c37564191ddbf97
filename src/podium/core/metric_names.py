"""Conventions shared by the metrics the gateway and the replicas expose on `/metrics`."""

from __future__ import annotations

# Upper bounds (seconds) of every request latency histogram; +Inf is implied. One set, so
# the gateway's and the replicas' histograms can be compared bucket by bucket.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
