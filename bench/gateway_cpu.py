"""The gateway's own CPU per request, auth on and off: the ASGI app with an in-memory transport.

    python bench/gateway_cpu.py            # writes bench/results/gateway-issue11-auth-cpu.json

No sockets, no uvicorn, no replica: `Gateway.__call__` for a POST to `/endpoints/echo/predict`
and to `/v1/chat/completions`, with a transport that answers a complete 200 at once. Three
configurations: no stage; an `AccessStage` with auth on, the endpoint protected and the
request carrying `Authorization: Bearer <token>` of a token with `invoke`; the same with a
per-token rate limit high enough never to refuse (the bucket's arithmetic). Best of 5
batches of `--requests` after a warm-up, alternated `--rounds` times. What wrk measures
through sockets is dominated by uvicorn and the kernel; this is the part the stage adds to.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import uvloop
from common import machine, write_results

from podium.core.access import (
    Principal,
    RateLimit,
    Scope,
    TokenDirectory,
    TokenEntry,
    granted,
    issue_token,
)
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute
from podium.core.settings import GatewaySettings
from podium.gateway import AccessStage, Gateway

BODY = b'{"model": "echo", "inputs": "The quick brown fox"}'
PATHS = ("/endpoints/echo/predict", "/v1/chat/completions")
CONFIGS = ("no stage", "auth on", "auth on + token rate limit")


class _Answer:
    status = 200
    headers = [(b"content-type", b"application/json"), (b"content-length", b"20")]

    def body_if_complete(self) -> bytes:
        return b'{"outputs": "hello"}'

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Transport:
    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def request(self, *args: Any) -> _Answer:
        return _Answer()


def _gateway(config: str) -> tuple[Gateway, list[tuple[bytes, bytes]]]:
    source = InProcessRoutingSource()
    replica = ReplicaRoute("r1", "127.0.0.1", 1, 1)
    route = EndpointRoute("echo", EndpointStatus.RUNNING, (replica,), max_concurrency=64)
    source.publish({"echo": route})
    headers = [(b"host", b"x"), (b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(BODY)).encode()))
    if config == "no stage":
        return Gateway(source, GatewaySettings(), transport=_Transport()), headers  # type: ignore[arg-type]
    issued = issue_token()
    limit = RateLimit(1e9, 10**9) if "rate limit" in config else None
    who = Principal(issued.token_id, "bench", granted([Scope.INVOKE]), None, None, limit)
    stage = AccessStage(TokenDirectory([TokenEntry(who, issued.secret_hash)]), auth=True)
    headers.append((b"authorization", f"Bearer {issued.token}".encode()))
    gateway = Gateway(source, GatewaySettings(), transport=_Transport(), stages=[stage])  # type: ignore[arg-type]
    return gateway, headers


async def _measure(config: str, n: int) -> dict[str, float]:
    gateway, headers = _gateway(config)
    message = {"type": "http.request", "body": BODY, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def send(m: dict[str, Any]) -> None:
        pass

    out: dict[str, float] = {}
    for path in PATHS:
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 5),
            "scheme": "http",
            "root_path": "",
        }
        for _ in range(2000):
            await gateway(dict(scope), receive, send)
        best = 1e9
        for _ in range(5):
            scopes = [dict(scope) for _ in range(n)]  # a fresh scope per request, as a server
            started = time.perf_counter()
            for s in scopes:
                await gateway(s, receive, send)
            best = min(best, (time.perf_counter() - started) / n * 1e6)
        out[path] = round(best, 2)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=20000, help="requests per batch")
    p.add_argument("--rounds", type=int, default=3, help="alternations of the configurations")
    p.add_argument("--output", default="gateway-issue11-auth-cpu")
    args = p.parse_args()
    results: dict[str, dict[str, float]] = {}
    for n in range(args.rounds):
        for config in CONFIGS:
            results[f"{config} #{n + 1}"] = uvloop.run(_measure(config, args.requests))
            print(f"{config + ' #' + str(n + 1):32} {results[f'{config} #{n + 1}']}", flush=True)
    best = {
        config: {
            path: min(v[path] for k, v in results.items() if k.startswith(config + " #"))
            for path in PATHS
        }
        for config in CONFIGS
    }
    added = {
        config: {path: round(best[config][path] - best["no stage"][path], 2) for path in PATHS}
        for config in CONFIGS[1:]
    }
    doc = {
        "what": "µs of CPU per request through Gateway.__call__ with an in-memory transport "
        "(no sockets), best of 5 batches per round; the minimum over rounds is `best`",
        "machine": machine(),
        "requests_per_batch": args.requests,
        "results": results,
        "best_us": best,
        "added_us": added,
    }
    path = write_results(args.output, doc)
    print(f"best µs per request: {best}\nadded by the stage: {added}\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
