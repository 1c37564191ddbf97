"""Gateway overhead: wrk against an echo replica, directly and through the gateway.

    python bench/gateway.py                 # what `make bench` runs
    python bench/gateway.py --duration 5 --rounds 1   # quicker
    python bench/gateway.py --serve-gateway --port P --upstream HOST:PORT   # (internal)

An echo model on the `python` runtime runs in a real replica process
(`python -m podium.replica`); gateway processes (uvicorn + uvloop + httptools serving
`podium.gateway.Gateway`) route the endpoint `echo` to it, one per upstream transport
(`http1`, the default, and `aiohttp`). wrk (one thread, pinned to CPU 0 with taskset)
POSTs a small JSON body for `--duration` seconds at 1 and 64 connections, against the
replica directly and through each gateway, in `--rounds` interleaved rounds (each
target's median round is kept). Results go to bench/results/gateway.json and a table is
printed. Targets reported against (not asserted): gateway throughput >= 70 % of direct;
added p50 latency <= 0.5 ms at 1 connection. At 1 connection throughput is bound by
latency (one request at a time), so the ratio there is 1 / (1 + added / direct).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common import (
    PYTHON,
    ROOT,
    Processes,
    WrkResult,
    as_dict,
    ensure_wrk,
    free_port,
    machine,
    post_script,
    run_wrk,
    wait_ready,
    write_results,
)

BODY = b'{"inputs": "The quick brown fox jumps over the lazy dog"}'
CONNECTIONS = (1, 64)
# Upstream transports of the gateway: the default (http1) and the aiohttp alternative.
TRANSPORTS = ("http1", "aiohttp")
TARGET_RATIO = 0.70
TARGET_ADDED_P50_MS = 0.5

MODEL_PY = """\
class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        return inputs
"""


def serve_gateway(port: int, upstream: str, transport: str) -> None:
    """Run a gateway with one endpoint `echo` -> the replica at `upstream` (host:port)."""
    import uvicorn

    from podium.core.phases import EndpointStatus
    from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute
    from podium.core.settings import GatewaySettings
    from podium.gateway import Gateway
    from podium.gateway.aiohttp_transport import AiohttpTransport

    host, _, replica_port = upstream.rpartition(":")
    holder = InProcessRoutingSource()
    replica = ReplicaRoute("echo-1", host, int(replica_port), revision=1)
    # The replica's own limit: the gateway sends it up to 64 requests at once, as wrk does
    # when it calls the replica directly.
    route = EndpointRoute("echo", EndpointStatus.RUNNING, (replica,), max_concurrency=64)
    holder.publish({"echo": route})
    settings = GatewaySettings()
    app = Gateway(
        holder,
        settings,
        transport=AiohttpTransport(settings) if transport == "aiohttp" else None,
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


def write_bundle(folder: Path) -> Path:
    bundle = folder / "echo-model"
    bundle.mkdir()
    (bundle / "model.py").write_text(MODEL_PY, encoding="utf-8")
    return bundle


def run(duration_s: int, rounds: int, log_dir: Path) -> dict[str, object]:
    ensure_wrk()
    procs = Processes(log_dir)
    bundle = write_bundle(log_dir)
    replica_port = free_port()
    script = post_script(BODY)
    try:
        replica = procs.start(
            "replica",
            [
                PYTHON, "-m", "podium.replica",
                "--replica-id", "echo-1", "--endpoint", "echo", "--revision", "1",
                "--runtime", "python", "--model-path", str(bundle),
                "--port", str(replica_port),
                "--max-concurrency", "64", "--max-queue", "1024",
            ],
        )  # fmt: skip
        direct = f"http://127.0.0.1:{replica_port}/"
        wait_ready(f"{direct}health/ready", proc=replica)
        targets = [("direct", direct)]
        for transport in TRANSPORTS:
            port = free_port()
            gateway = procs.start(
                f"gateway-{transport}",
                [
                    PYTHON, str(Path(__file__).resolve()), "--serve-gateway",
                    "--port", str(port), "--upstream", f"127.0.0.1:{replica_port}",
                    "--transport", transport,
                ],
            )  # fmt: skip
            routed = f"http://127.0.0.1:{port}/endpoints/echo/"
            wait_ready(routed, method="POST", body=BODY, proc=gateway)
            targets.append((f"gateway/{transport}", routed))
        wait_ready(direct, method="POST", body=BODY, proc=replica)

        for target, url in targets:  # warm-up
            run_wrk(target, url, script, connections=max(CONNECTIONS), duration_s=2)
        # Rounds interleave the targets, so a burst of other work on the machine hits all
        # of them alike; each target's median round (by throughput) is reported.
        runs: list[WrkResult] = []
        load_before = os.getloadavg()
        for n in range(rounds):
            for connections in CONNECTIONS:
                for target, url in targets:
                    result = run_wrk(
                        target, url, script, connections=connections, duration_s=duration_s
                    )
                    runs.append(result)
                    print(
                        f"  round {n + 1}/{rounds} {target:16} c={connections:<3}"
                        f" {result.requests_per_s:9.0f} req/s  p50 {result.p50_ms:7.3f} ms"
                        f"  p99 {result.p99_ms:7.3f} ms",
                        flush=True,
                    )
        load_after = os.getloadavg()
    finally:
        procs.stop_all()
        script.unlink(missing_ok=True)
    results = [
        median_run([r for r in runs if (r.target, r.connections) == (target, c)])
        for c in CONNECTIONS
        for target, _ in targets
    ]
    doc = report(results, duration_s)
    doc["rounds"] = rounds
    doc["all_runs"] = [as_dict(r) for r in runs]
    doc["load_average"] = {"before": load_before, "after": load_after}
    return doc


def median_run(runs: list[WrkResult]) -> WrkResult:
    return sorted(runs, key=lambda r: r.requests_per_s)[len(runs) // 2]


def report(results: list[WrkResult], duration_s: int) -> dict[str, object]:
    by = {(r.target, r.connections): r for r in results}
    summary = []
    for transport in TRANSPORTS:
        for c in CONNECTIONS:
            direct, gateway = by[("direct", c)], by[(f"gateway/{transport}", c)]
            ratio = gateway.requests_per_s / direct.requests_per_s if direct.requests_per_s else 0
            summary.append(
                {
                    "gateway": f"gateway/{transport}",
                    "connections": c,
                    "throughput_ratio": round(ratio, 3),
                    "added_p50_ms": round(gateway.p50_ms - direct.p50_ms, 3),
                    "added_p99_ms": round(gateway.p99_ms - direct.p99_ms, 3),
                }
            )
    return {
        "machine": machine(),
        "command": "make bench",
        "setup": {
            "wrk": "wrk -t1 -cN --latency (POST, small JSON body), pinned with taskset -c 0",
            "duration_s": duration_s,
            "body": BODY.decode(),
            "replica": "python -m podium.replica --runtime python (echo model), "
            "--max-concurrency 64 --max-queue 1024",
            "gateway": "uvicorn (uvloop, httptools) serving podium.gateway.Gateway, 1 process; "
            "gateway/http1 = default upstream transport, gateway/aiohttp = AiohttpTransport",
            "pinning": "wrk on CPU 0; replica and gateway processes not pinned",
        },
        "targets": {
            "throughput_ratio_min": TARGET_RATIO,
            "added_p50_ms_max_at_1_connection": TARGET_ADDED_P50_MS,
        },
        "results": [as_dict(r) for r in results],
        "summary": summary,
    }


def print_table(doc: dict[str, object]) -> None:
    results = doc["results"]
    summary = doc["summary"]
    assert isinstance(results, list) and isinstance(summary, list)
    print()
    print(f"{'target':16} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>8}")
    for r in results:
        print(
            f"{r['target']:16} {r['connections']:>5} {r['requests_per_s']:>9.0f}"
            f" {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['non_2xx'] + r['socket_errors']:>8}"
        )
    print()
    print(
        f"{'gateway':16} {'conns':>5} {'of direct':>10} {'added p50 ms':>13} {'added p99 ms':>13}"
    )
    for s in summary:
        print(
            f"{s['gateway']:16} {s['connections']:>5} {s['throughput_ratio']:>10.0%}"
            f" {s['added_p50_ms']:>13.3f} {s['added_p99_ms']:>13.3f}"
        )
    print()
    for transport in TRANSPORTS:
        rows = [s for s in summary if s["gateway"] == f"gateway/{transport}"]
        one = next(s for s in rows if s["connections"] == 1)
        worst = min(s["throughput_ratio"] for s in rows)
        print(
            f"gateway/{transport}: throughput >= {TARGET_RATIO:.0%} of direct: "
            f"{'met' if worst >= TARGET_RATIO else 'MISSED'} (worst {worst:.0%}); "
            f"added p50 <= {TARGET_ADDED_P50_MS} ms at c=1: "
            f"{'met' if one['added_p50_ms'] <= TARGET_ADDED_P50_MS else 'MISSED'} "
            f"({one['added_p50_ms']:.3f} ms)"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported")
    p.add_argument("--serve-gateway", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--upstream", help=argparse.SUPPRESS)
    p.add_argument("--transport", default="http1", help=argparse.SUPPRESS)
    p.add_argument("--output", default="gateway", help="name of the file under bench/results")
    args = p.parse_args(argv)
    if args.serve_gateway:
        serve_gateway(args.port, args.upstream, args.transport)
        return 0
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as tmp:
        print(
            f"gateway bench: {args.rounds} rounds, {args.duration} s per run; logs in {tmp}",
            flush=True,
        )
        doc = run(args.duration, args.rounds, Path(tmp))
    path = write_results(args.output, doc)
    print_table(doc)
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
