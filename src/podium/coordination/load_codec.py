"""A gateway's load report as JSON (the `gateway_reports` row's body), and sums of reports.

A report is what one gateway process counted (`core.service_counts`, `EndpointLoad`) and
its outstanding requests per replica; `loads.ClusterGatewayView` adds reports up with the
helpers here (pure functions, no I/O).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from podium.core.routing import EndpointLoad
from podium.core.service_counts import ReplicaCounts, ServiceCounts, ServiceSnapshot


@dataclass(frozen=True, slots=True)
class Report:
    """One gateway's report. `incarnation` differs for every start of a gateway, so a
    restarted gateway (counting from zero again) is told from one whose counts went on."""

    incarnation: str
    service: ServiceSnapshot
    load: Mapping[str, EndpointLoad]
    outstanding: Mapping[str, int] = field(default_factory=dict)


def encode(report: Report) -> str:
    return json.dumps(
        {
            "incarnation": report.incarnation,
            "taken_at": report.service.taken_at,
            "endpoints": {k: _counts(v) for k, v in report.service.endpoints.items()},
            "replicas": {
                k: {"endpoint": v.endpoint, "counts": _counts(v.counts)}
                for k, v in report.service.replicas.items()
            },
            "load": {k: _load(v) for k, v in report.load.items()},
            "outstanding": dict(report.outstanding),
        },
        separators=(",", ":"),
    )


def decode(body: str) -> Report:
    d: dict[str, Any] = json.loads(body)
    service = ServiceSnapshot(
        taken_at=float(d["taken_at"]),
        endpoints={k: _parse_counts(v) for k, v in d["endpoints"].items()},
        replicas={
            k: ReplicaCounts(str(v["endpoint"]), _parse_counts(v["counts"]))
            for k, v in d["replicas"].items()
        },
    )
    return Report(
        incarnation=str(d["incarnation"]),
        service=service,
        load={k: _parse_load(v) for k, v in d["load"].items()},
        outstanding={str(k): int(v) for k, v in d["outstanding"].items()},
    )


def _counts(c: ServiceCounts) -> dict[str, Any]:
    return {
        "requests": c.requests,
        "by_class": list(c.by_class),
        "latency_sum": c.latency_sum,
        "latency_buckets": list(c.latency_buckets),
        "bytes_in": c.bytes_in,
        "bytes_out": c.bytes_out,
    }


def _parse_counts(d: Mapping[str, Any]) -> ServiceCounts:
    by_class = tuple(int(x) for x in d["by_class"])
    if len(by_class) != 6:
        raise ValueError("by_class needs six counts")
    return ServiceCounts(
        requests=int(d["requests"]),
        by_class=by_class,  # length checked above
        latency_sum=float(d["latency_sum"]),
        latency_buckets=tuple(int(x) for x in d["latency_buckets"]),
        bytes_in=int(d["bytes_in"]),
        bytes_out=int(d["bytes_out"]),
    )


def _load(x: EndpointLoad) -> dict[str, Any]:
    return {
        "in_flight": x.in_flight,
        "held": x.held,
        "requests": x.requests,
        "errors": x.errors,
        "succeeded": x.succeeded,
        "succeeded_by_revision": {str(k): v for k, v in x.succeeded_by_revision.items()},
    }


def _parse_load(d: Mapping[str, Any]) -> EndpointLoad:
    return EndpointLoad(
        in_flight=int(d["in_flight"]),
        held=int(d["held"]),
        requests=int(d["requests"]),
        errors=int(d["errors"]),
        succeeded=int(d["succeeded"]),
        succeeded_by_revision={int(k): int(v) for k, v in d["succeeded_by_revision"].items()},
    )


# -- sums -------------------------------------------------------------------------------


def add_counts(a: ServiceCounts | None, b: ServiceCounts) -> ServiceCounts:
    if a is None:
        return b
    return ServiceCounts(
        requests=a.requests + b.requests,
        by_class=tuple(x + y for x, y in zip(a.by_class, b.by_class, strict=True)),  # type: ignore[arg-type]
        latency_sum=a.latency_sum + b.latency_sum,
        latency_buckets=tuple(
            x + y for x, y in zip(a.latency_buckets, b.latency_buckets, strict=True)
        ),
        bytes_in=a.bytes_in + b.bytes_in,
        bytes_out=a.bytes_out + b.bytes_out,
    )


def add_load(a: EndpointLoad | None, b: EndpointLoad, *, live: bool = True) -> EndpointLoad:
    """`a + b`; with `live=False` only `b`'s cumulative counts are added (a gateway that is
    gone holds no request any more, but what it counted stays counted)."""
    a = a or EndpointLoad()
    by_revision = dict(a.succeeded_by_revision)
    for revision, n in b.succeeded_by_revision.items():
        by_revision[revision] = by_revision.get(revision, 0) + n
    return EndpointLoad(
        in_flight=a.in_flight + (b.in_flight if live else 0),
        held=a.held + (b.held if live else 0),
        requests=a.requests + b.requests,
        errors=a.errors + b.errors,
        succeeded=a.succeeded + b.succeeded,
        succeeded_by_revision=by_revision,
    )
