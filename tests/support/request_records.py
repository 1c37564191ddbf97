"""Request records built by hand, for the tests of storing, serving and showing them (the
gateway's recording stage makes the real ones)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from podium.core.request_record import ErrorClass, Protocol, RequestRecord, Row

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def record(i: int = 0, endpoint: str = "iris", **changes: Any) -> RequestRecord:
    """The `i`-th request to `endpoint` (received `i` seconds after T0, 10 + i ms long): a
    200 from replica r1 of revision 1, every optional field filled."""
    made = RequestRecord(
        request_id=f"req-{i:06d}",
        endpoint=endpoint,
        project=endpoint.split(".")[0] if "." in endpoint else "default",
        protocol=Protocol.HF,
        route="/predict",
        method="POST",
        status=200,
        received_at=T0 + i,
        latency_ms=10.0 + i,
        queue_ms=0.5,
        revision=1,
        replica_id=f"{endpoint}-r1-000001",
        error=None,
        upstream_ms=9.25,
        ttfb_ms=9.5,
        ttft_ms=None,
        tokens_in=None,
        tokens_out=None,
        streamed=False,
        bytes_in=100 + i,
        bytes_out=200,
        client="127.0.0.1",
        user_agent="python-httpx/0.27",
        token_id="abcdefabcdef",
    )
    return replace(made, **changes)


def failed(i: int, status: int, error: ErrorClass | None, **changes: Any) -> RequestRecord:
    return record(i, status=status, error=error, **changes)


def row(i: int = 0, endpoint: str = "iris", **changes: Any) -> Row:
    """`record(...)` as the gateway offers it to the buffer (its row)."""
    return record(i, endpoint, **changes).row()
