"""A small load generator for machines without wrk: `run_wrk` falls back to it.

    python bench/pyload.py -c CONNECTIONS -d SECONDS -s SCRIPT.lua URL

Reads the request from the wrk lua script that `common.post_script` writes (method, body,
headers), keeps CONNECTIONS keep-alive HTTP/1.1 connections busy for SECONDS on one uvloop
event loop (asyncio protocols; one request at a time on each, as wrk does), and prints what
`parse_wrk` reads: latency percentiles, the request count, Requests/sec, non-2xx answers. It is
slower than wrk (Python), so absolute figures under it are lower; ratios measured in one
run with the same generator compare alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from urllib.parse import urlsplit

import uvloop


def read_script(path: str) -> tuple[str, bytes, list[tuple[str, str]]]:
    text = open(path, encoding="utf-8").read()  # noqa: SIM115 (a small file, read once)
    method = re.search(r'wrk\.method = "([A-Z]+)"', text)
    body = re.search(r"wrk\.body = (\".*\")$", text, re.M)
    headers = re.findall(r'wrk\.headers\["([^"]+)"\] = "([^"]*)"', text)
    return (
        method.group(1) if method else "GET",
        json.loads(body.group(1)).encode() if body else b"",
        headers,
    )


class _Client(asyncio.Protocol):
    """One keep-alive connection sending `request` again as soon as each answer is whole."""

    def __init__(self, request: bytes, until: float, stats: _Stats, done: asyncio.Future[None]):
        self.request = request
        self.until = until
        self.stats = stats
        self.done = done
        self.buffer = b""
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.started = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = _answer_end(self.buffer)
        if end < 0:
            return
        now = time.perf_counter()
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[end:]
        self.stats.latencies.append(now - self.started)
        if not 200 <= status < 400:
            self.stats.bad += 1
        if now < self.until:
            self._send()
        else:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.bad = 0


def _answer_end(buffer: bytes) -> int:
    """Where the first whole answer in `buffer` ends; -1 while it is not whole."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return -1
    head = buffer[:head_end].lower()
    body_start = head_end + 4
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
    if m:
        end = body_start + int(m.group(1))
        return end if len(buffer) >= end else -1
    if b"transfer-encoding: chunked" in head:
        i = buffer.find(b"0\r\n\r\n", body_start)  # the last chunk (JSON holds no CRLF)
        return i + 5 if i >= 0 else -1
    return body_start


async def _run(url: str, connections: int, duration: float, script: str) -> None:
    method, body, headers = read_script(script)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    stats = _Stats()
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    until = began + duration
    waits = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda d=done: _Client(request, until, stats, d), host, port)
        waits.append(done)
    await asyncio.gather(*waits)
    took = time.perf_counter() - began
    latencies = sorted(stats.latencies)
    n = len(latencies)
    print("  Latency Distribution")
    for pct in (50, 75, 90, 99):
        value = latencies[min(n - 1, n * pct // 100)] * 1000 if n else 0.0
        print(f"     {pct}%    {value:.3f}ms")
    print(f"  {n} requests in {took:.2f}s, 0.00MB read")
    if stats.bad:
        print(f"  Non-2xx or 3xx responses: {stats.bad}")
    print(f"Requests/sec: {n / took:.2f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-c", "--connections", type=int, required=True)
    p.add_argument("-d", "--duration", type=float, required=True)
    p.add_argument("-s", "--script", required=True)
    p.add_argument("url")
    args = p.parse_args()
    uvloop.run(_run(args.url, args.connections, args.duration, args.script))
    return 0


if __name__ == "__main__":
    sys.exit(main())
