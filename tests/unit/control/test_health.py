"""Probes read at most `MAX_BODY` bytes of an answer, and still understand a "hung" 503."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import httpx

from podium.control.health import MAX_BODY, probe

CHUNK = 64 * 1024


def _client(status: int, body: AsyncIterator[bytes] | bytes) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _r: httpx.Response(status, content=body))
    )


def test_a_huge_probe_body_is_not_read_whole() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:  # 1 GiB if anyone read it all
        nonlocal sent
        for _ in range(2**30 // CHUNK):
            sent += CHUNK
            yield b"x" * CHUNK

    async def main() -> None:
        for status in (503, 200):
            async with _client(status, endless()) as client:
                res = await probe(client, "http://replica/health/live", 1.0)
            assert res.ok is (status == 200) and not res.hung, res

    anyio.run(main)
    assert sent <= 2 * (MAX_BODY + CHUNK)


def test_a_hung_problem_is_still_understood() -> None:
    doc = {"hung": True, "detail": "a call has run 12 s", "oldest_call_s": 12.0, "limit_s": 10}

    async def main() -> None:
        async with _client(503, json.dumps(doc).encode()) as client:
            res = await probe(client, "http://replica/health/live", 1.0)
        assert res.hung and res.detail == "a call has run 12 s"
        assert res.figures == {"oldest_call_s": 12.0, "limit_s": 10.0}

    anyio.run(main)
