"""Readiness and liveness probes: one HTTP GET each, run concurrently by the controller."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    refused: bool = False  # nothing listening yet (a starting replica), not a failure
    detail: str = ""


async def probe(client: httpx.AsyncClient, url: str, timeout_s: float) -> ProbeResult:
    try:
        resp = await client.get(url, timeout=timeout_s)
    except httpx.ConnectError as e:
        return ProbeResult(ok=False, refused=True, detail=f"connection failed: {e}")
    except httpx.TimeoutException:
        return ProbeResult(ok=False, detail=f"no answer within {timeout_s:g}s")
    except httpx.HTTPError as e:
        return ProbeResult(ok=False, detail=f"{type(e).__name__}: {e}")
    if resp.status_code == 200:
        return ProbeResult(ok=True)
    return ProbeResult(ok=False, detail=f"HTTP {resp.status_code}")
