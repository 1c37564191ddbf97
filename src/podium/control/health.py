"""Readiness and liveness probes: one HTTP GET each, run concurrently by the controller.

A replica's `/health/live?hung_after_s=N` answers 503 with a problem whose `hung` member
is true when a call into its runtime has run longer than N seconds; the result then says
`hung`, with the replica's own words and figures. A probe that gets no answer in time is
`timed_out`: the replica's event loop may be blocked (the controller calls it hung once
no probe has been answered for the endpoint's timeout plus the grace).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

MAX_DETAIL = 300  # characters of a replica's own explanation kept in a probe's detail
MAX_BODY = 64 * 1024  # bytes of a probe's body read at most; a larger one is not parsed


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    refused: bool = False  # nothing listening yet (a starting replica), not a failure
    detail: str = ""
    timed_out: bool = False  # connected (or tried) but no answer within the timeout
    hung: bool = False  # the replica says a call into its runtime has run too long
    figures: dict[str, float] = field(default_factory=dict)  # e.g. oldest_call_s, limit_s


async def probe(
    client: httpx.AsyncClient, url: str, timeout_s: float, params: dict[str, str] | None = None
) -> ProbeResult:
    """GET `url`; the body is streamed and at most `MAX_BODY` bytes of it are read."""
    try:
        async with client.stream("GET", url, params=params, timeout=timeout_s) as resp:
            body = await _read_at_most(resp, MAX_BODY)
    except httpx.ConnectError as e:
        return ProbeResult(ok=False, refused=True, detail=f"connection failed: {e}")
    except httpx.TimeoutException:
        return ProbeResult(ok=False, timed_out=True, detail=f"no answer within {timeout_s:g}s")
    except httpx.HTTPError as e:
        return ProbeResult(ok=False, detail=f"{type(e).__name__}: {e}")
    if resp.status_code == 200:
        return ProbeResult(ok=True)
    if resp.status_code == 503 and body is not None:
        hung = _hung(body)
        if hung is not None:
            return hung
    return ProbeResult(ok=False, detail=f"HTTP {resp.status_code}")


async def _read_at_most(resp: httpx.Response, limit: int) -> bytes | None:
    """The body if it is at most `limit` bytes; None (and the rest left unread) if longer."""
    data = bytearray()
    async for chunk in resp.aiter_bytes():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def _hung(body: bytes) -> ProbeResult | None:
    """The replica's "hung" problem, if that is what this 503's body is."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("hung") is not True:
        return None
    detail = str(doc.get("detail") or "hung")[:MAX_DETAIL]
    figures = {
        k: float(v)
        for k in ("oldest_call_s", "limit_s", "running_calls")
        if isinstance(v := doc.get(k), int | float) and not isinstance(v, bool)
    }
    return ProbeResult(ok=False, hung=True, detail=detail, figures=figures)
