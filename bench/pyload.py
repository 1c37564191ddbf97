"""A small load generator for machines without wrk: `run_wrk` falls back to it.

    python bench/pyload.py -c CONNECTIONS -d SECONDS -s SCRIPT.lua URL

Reads the request from the wrk lua script that `common.post_script` writes (method, body,
headers), keeps CONNECTIONS keep-alive HTTP/1.1 connections busy for SECONDS on one uvloop
event loop (one request at a time on each, as wrk does), and prints what `parse_wrk`
reads: latency percentiles, the request count, Requests/sec, non-2xx answers. It is
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


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
    if m:
        await reader.readexactly(int(m.group(1)))
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _connection(
    host: str, port: int, request: bytes, until: float, latencies: list[float], bad: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter
    try:
        while clock() < until:
            start = clock()
            writer.write(request)
            status = await _read_answer(reader)
            latencies.append(clock() - start)
            if not 200 <= status < 400:
                bad[0] += 1
    finally:
        writer.close()


async def _run(url: str, connections: int, duration: float, script: str) -> None:
    method, body, headers = read_script(script)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    latencies: list[float] = []
    bad = [0]
    began = time.perf_counter()
    until = began + duration
    await asyncio.gather(
        *(_connection(host, port, request, until, latencies, bad) for _ in range(connections))
    )
    took = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)
    print("  Latency Distribution")
    for pct in (50, 75, 90, 99):
        value = latencies[min(n - 1, n * pct // 100)] * 1000 if n else 0.0
        print(f"     {pct}%    {value:.3f}ms")
    print(f"  {n} requests in {took:.2f}s, 0.00MB read")
    if bad[0]:
        print(f"  Non-2xx or 3xx responses: {bad[0]}")
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
