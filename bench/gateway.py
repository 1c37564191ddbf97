"""Gateway overhead: wrk against an echo replica, directly and through the gateway.

    python bench/gateway.py                 # what `make bench` runs
    python bench/gateway.py --duration 5 --rounds 1   # quicker
    python bench/gateway.py --auth          # auth on vs off, side by side (issue 11)
    python bench/gateway.py --records       # request records on vs off (issue 12)
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

`--auth` compares access control on and off in one run, against the same replica: the
targets are direct, `gateway/http1` (no stage) and `gateway/http1+auth` (an `AccessStage`
with auth on, the endpoint `protected`, wrk sending `Authorization: Bearer <token>` of a
token with `invoke`); results go to bench/results/gateway-issue11-auth.json (unless
`--output`). Target reported against: auth on >= 95 % of auth off throughput.

`--records` compares request records on and off the same way: `gateway/http1` (records
off: no stage) and `gateway/http1+records` (a `RecordBuffer` given to the gateway, so its
`RecordStage` runs, drained by the server's own `RecordWriter` thread in the gateway's
process into a real SQLite store: `bench/records_sink.py`). Both gateways collect and
freeze their heap before serving, as the server does. Results go to
bench/results/gateway-issue12-records.json, with the records offered, dropped and written
by the records gateway. Target reported against: records on >= 95 % of records off
throughput at 64 connections.
Without wrk, `bench/pyload.py` drives the load (slower; the JSON says which ran).
"""

from __future__ import annotations

import argparse
import json
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
    load_generator,
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
TARGET_AUTH_RATIO = 0.95
AUTH = "gateway/http1+auth"
RECORDS = "gateway/http1+records"
# --auth --records: records on vs off in the default configuration (auth on), where the
# gateway builds an `Invocation` per request for the access stage whether records are on.
AUTH_RECORDS = "gateway/http1+auth+records"
TARGET_RECORDS_RATIO = 0.95
BEFORE = "gateway/http1@before"  # --before: the same gateway from another tree's sources
# --before with --records: that tree's gateway with its records on too (a tree that has them)
RECORDS_BEFORE = "gateway/http1+records@before"
TOKEN_ENV = "PODIUM_BENCH_TOKEN"  # the token the auth gateway knows (made by the parent)

MODEL_PY = """\
class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        return inputs
"""


def serve_gateway(
    port: int,
    upstream: str,
    transport: str,
    auth: bool = False,
    records: Path | None = None,
) -> None:
    """Run a gateway with one endpoint `echo` -> the replica at `upstream` (host:port); with
    `auth`, the endpoint is protected and an `AccessStage` knows the token in TOKEN_ENV;
    with `records` (a SQLite file), request records are written there by the server's
    writer, and the counts of records offered, dropped and written go to `records` +
    ".json" (`records_sink`). Every gateway freezes its heap before serving, as the server
    does once it has started (`server.app.Podium.startup`)."""
    import gc

    import uvicorn

    from podium.core.phases import EndpointStatus
    from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute
    from podium.core.settings import GatewaySettings
    from podium.gateway import Gateway
    from podium.gateway.aiohttp_transport import AiohttpTransport

    host, _, replica_port = upstream.rpartition(":")
    holder = InProcessRoutingSource()
    replica = ReplicaRoute("echo-1", host, int(replica_port), revision=1)
    # `protected` (the default): with `auth`, only a token with `invoke` passes.
    # The replica's own limit: the gateway sends it up to 64 requests at once, as wrk does
    # when it calls the replica directly.
    route = EndpointRoute("echo", EndpointStatus.RUNNING, (replica,), max_concurrency=64)
    holder.publish({"echo": route})
    settings = GatewaySettings()
    stages = []
    if auth:
        from podium.core.access import (
            Principal,
            Scope,
            TokenDirectory,
            TokenEntry,
            granted,
            hash_secret,
            parse_token,
        )
        from podium.gateway import AccessStage

        parsed = parse_token(os.environ[TOKEN_ENV])
        assert parsed is not None
        token_id, secret = parsed
        who = Principal(token_id, "bench", granted([Scope.INVOKE]), frozenset({"default"}))
        directory = TokenDirectory([TokenEntry(who, hash_secret(secret))])
        stages.append(AccessStage(directory, auth=True))
    kwargs = {}  # none for a tree from before request records (`--before`)
    if records is not None:
        from records_sink import start_sink

        from podium.core.request_record import RecordBuffer
        from podium.core.settings import ObservabilitySettings

        buffer = RecordBuffer(ObservabilitySettings().buffer_records)
        start_sink(buffer, f"sqlite:///{records}", records.with_suffix(".json"))
        kwargs["records"] = buffer
    app = Gateway(
        holder,
        settings,
        transport=AiohttpTransport(settings) if transport == "aiohttp" else None,
        stages=stages,
        **kwargs,
    )
    gc.collect()  # as `Podium.startup` does for the server, records on and off alike
    gc.freeze()
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


def run(
    duration_s: int,
    rounds: int,
    log_dir: Path,
    auth: bool = False,
    before: Path | None = None,
    records: bool = False,
) -> dict[str, object]:
    from podium.core.access import issue_token

    ensure_wrk()
    procs = Processes(log_dir)
    bundle = write_bundle(log_dir)
    replica_port = free_port()
    script = post_script(BODY)
    token = issue_token().token
    authorization = {"Authorization": f"Bearer {token}"}
    auth_script = post_script(BODY, headers=authorization)
    scripts = {AUTH: auth_script, AUTH_RECORDS: auth_script}
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
        pids = {"direct": replica.pid}
        only_http1 = auth or records
        gateways = [(f"gateway/{t}", t, False) for t in (("http1",) if only_http1 else TRANSPORTS)]
        if auth:
            gateways.append((AUTH, "http1", True))
        if records:
            gateways.append((RECORDS, "http1", False))
        if auth and records:
            gateways.append((AUTH_RECORDS, "http1", True))
        if before is not None:
            gateways.insert(0, (BEFORE, "http1", False))
            if records:
                gateways.append((RECORDS_BEFORE, "http1", False))
        records_db = log_dir / "records.db"
        for target, transport, with_auth in gateways:
            env = {TOKEN_ENV: token}
            if target in (BEFORE, RECORDS_BEFORE):
                env["PYTHONPATH"] = str(before)
            port = free_port()
            extra = ["--auth"] if with_auth else []
            if target == RECORDS:
                extra = ["--records-db", str(records_db)]
            elif target == AUTH_RECORDS:
                extra = ["--auth", "--records-db", str(log_dir / "records-auth.db")]
            elif target == RECORDS_BEFORE:  # its own file: the other tree's schema
                extra = ["--records-db", str(log_dir / "records-before.db")]
            gateway = procs.start(
                target.replace("/", "-").replace("+", "-"),
                [
                    PYTHON, str(Path(__file__).resolve()), "--serve-gateway",
                    "--port", str(port), "--upstream", f"127.0.0.1:{replica_port}",
                    "--transport", transport, *extra,
                ],
                env=env,
            )  # fmt: skip
            routed = f"http://127.0.0.1:{port}/endpoints/echo/"
            headers = authorization if with_auth else None
            wait_ready(routed, method="POST", body=BODY, proc=gateway, headers=headers)
            targets.append((target, routed))
            pids[target] = gateway.pid
        wait_ready(direct, method="POST", body=BODY, proc=replica)

        for target, url in targets:  # warm-up
            lua = scripts.get(target, script)
            run_wrk(target, url, lua, connections=max(CONNECTIONS), duration_s=2)
        # Rounds interleave the targets, so a burst of other work on the machine hits all
        # of them alike, and every other round runs them in reverse order, so no target
        # always runs last (after the others warmed or tired the replica); each target's
        # median round (by throughput) is reported.
        runs: list[WrkResult] = []
        cpu: dict[tuple[str, int], list[float]] = {}  # µs of the target's CPU per request
        load_before = os.getloadavg()
        for n in range(rounds):
            for connections in CONNECTIONS:
                for target, url in targets if n % 2 == 0 else targets[::-1]:
                    lua = scripts.get(target, script)
                    used = cpu_seconds(pids[target])
                    result = run_wrk(
                        target, url, lua, connections=connections, duration_s=duration_s
                    )
                    used = cpu_seconds(pids[target]) - used
                    per_request = used / max(result.requests, 1) * 1e6
                    cpu.setdefault((target, connections), []).append(round(per_request, 1))
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
        auth_script.unlink(missing_ok=True)
    results = [
        median_run([r for r in runs if (r.target, r.connections) == (target, c)])
        for c in CONNECTIONS
        for target, _ in targets
    ]
    doc = report(results, duration_s, auth)
    if records:
        doc["command"] = (
            f"python bench/gateway.py --records --duration {duration_s} --rounds {rounds}"
        )
        by = {(r.target, r.connections): r for r in results}
        doc["records"] = records_summary(by, cpu)
        if auth:
            doc["command"] += " --auth"
            doc["records_with_auth"] = records_summary(by, cpu, off=AUTH, on=AUTH_RECORDS)
        doc["targets"] = {"records_on_throughput_of_records_off_min_at_64": TARGET_RECORDS_RATIO}
        counts = records_db.with_suffix(".json")
        doc["records_counts"] = json.loads(counts.read_text()) if counts.exists() else None
        doc["requests_to_records_gateway"] = sum(r.requests for r in runs if r.target == RECORDS)
    if before is not None:
        doc["before"] = before_summary(results, str(before))
    doc["rounds"] = rounds
    doc["cpu_us_per_request"] = {f"{t} c={c}": v for (t, c), v in cpu.items()}
    doc["all_runs"] = [as_dict(r) for r in runs]
    doc["load_average"] = {"before": load_before, "after": load_after}
    return doc


def median_run(runs: list[WrkResult]) -> WrkResult:
    return sorted(runs, key=lambda r: r.requests_per_s)[len(runs) // 2]


def report(results: list[WrkResult], duration_s: int, auth: bool = False) -> dict[str, object]:
    by = {(r.target, r.connections): r for r in results}
    summary = []
    for transport in (
        ("http1",) if auth or any(r.target == RECORDS for r in results) else TRANSPORTS
    ):
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
    doc: dict[str, object] = {
        "machine": machine(),
        "command": "make bench",
        "load_generator": load_generator(),
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
    if auth:
        doc["command"] = "python bench/gateway.py --auth"
        doc["auth"] = auth_summary(by)
        doc["targets"] = {"auth_on_throughput_of_auth_off_min": TARGET_AUTH_RATIO}
    return doc


def before_summary(results: list[WrkResult], before: str) -> list[dict[str, object]]:
    """This tree's gateway without a stage against the other tree's (`--before`)."""
    by = {(r.target, r.connections): r for r in results}
    out: list[dict[str, object]] = []
    for c in CONNECTIONS:
        old, new = by[(BEFORE, c)], by[("gateway/http1", c)]
        change = new.requests_per_s / old.requests_per_s - 1 if old.requests_per_s else 0
        out.append(
            {
                "connections": c,
                "before_src": before,
                "before_rps": round(old.requests_per_s),
                "now_rps": round(new.requests_per_s),
                "change": f"{change:+.1%}",
            }
        )
    return out


def auth_summary(by: dict[tuple[str, int], WrkResult]) -> list[dict[str, object]]:
    """Auth on (stage, protected endpoint, bearer token) against off (no stage)."""
    out = []
    for c in CONNECTIONS:
        off, on = by[("gateway/http1", c)], by[(AUTH, c)]
        ratio = on.requests_per_s / off.requests_per_s if off.requests_per_s else 0
        out.append(
            {
                "connections": c,
                "auth_off_rps": round(off.requests_per_s),
                "auth_on_rps": round(on.requests_per_s),
                "throughput_ratio": round(ratio, 3),
                "added_p50_ms": round(on.p50_ms - off.p50_ms, 3),
                "added_p99_ms": round(on.p99_ms - off.p99_ms, 3),
                "errors": on.non_2xx + on.socket_errors,
            }
        )
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def records_summary(
    by: dict[tuple[str, int], WrkResult],
    cpu: dict[tuple[str, int], list[float]],
    *,
    off: str = "gateway/http1",
    on: str = RECORDS,
) -> list[dict[str, object]]:
    """Records on (RecordStage, buffer, SQLite writer thread) against off (no stage; with
    `--auth`, also both with the access stage); with each gateway process's CPU per request
    (median of rounds): on a busy machine, the steadier measure of what records cost."""
    out = []
    for c in CONNECTIONS:
        without, with_records = by[(off, c)], by[(on, c)]
        ratio = (
            with_records.requests_per_s / without.requests_per_s if without.requests_per_s else 0
        )
        cpu_off = sorted(cpu[(off, c)])[len(cpu[(off, c)]) // 2]
        cpu_on = sorted(cpu[(on, c)])[len(cpu[(on, c)]) // 2]
        out.append(
            {
                "connections": c,
                "records_off_rps": round(without.requests_per_s),
                "records_on_rps": round(with_records.requests_per_s),
                "throughput_ratio": round(ratio, 3),
                "gateway_cpu_us_per_request_off": cpu_off,
                "gateway_cpu_us_per_request_on": cpu_on,
                "added_p50_ms": round(with_records.p50_ms - without.p50_ms, 3),
                "added_p99_ms": round(with_records.p99_ms - without.p99_ms, 3),
                "errors": with_records.non_2xx + with_records.socket_errors,
            }
        )
    return out


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
        if not rows:
            continue
        one = next(s for s in rows if s["connections"] == 1)
        worst = min(s["throughput_ratio"] for s in rows)
        print(
            f"gateway/{transport}: throughput >= {TARGET_RATIO:.0%} of direct: "
            f"{'met' if worst >= TARGET_RATIO else 'MISSED'} (worst {worst:.0%}); "
            f"added p50 <= {TARGET_ADDED_P50_MS} ms at c=1: "
            f"{'met' if one['added_p50_ms'] <= TARGET_ADDED_P50_MS else 'MISSED'} "
            f"({one['added_p50_ms']:.3f} ms)"
        )
    for row in doc.get("before", []):  # type: ignore[attr-defined]
        print(
            f"no stage vs before, c={row['connections']}: {row['now_rps']} vs "
            f"{row['before_rps']} req/s ({row['change']})"
        )
    pairs = [("", row) for row in doc.get("records", [])]  # type: ignore[attr-defined]
    pairs += [(" (auth on)", row) for row in doc.get("records_with_auth", [])]  # type: ignore[attr-defined]
    for label, row in pairs:
        ratio = row["throughput_ratio"]
        met = (
            ""
            if row["connections"] != 64
            else f" (target >= {TARGET_RECORDS_RATIO:.0%}: "
            + ("met)" if ratio >= TARGET_RECORDS_RATIO else "MISSED)")
        )
        print(
            f"records on vs off{label}, c={row['connections']}: {row['records_on_rps']} vs "
            f"{row['records_off_rps']} req/s = {ratio:.1%}{met}; added p50 "
            f"{row['added_p50_ms']:.3f} ms; errors {row['errors']}; gateway CPU "
            f"{row['gateway_cpu_us_per_request_on']} vs {row['gateway_cpu_us_per_request_off']}"
            " µs/request"
        )
    if doc.get("records_counts"):
        print(f"records gateway: {doc['records_counts']} of {doc['requests_to_records_gateway']}")
    auth = doc.get("auth")
    if isinstance(auth, list):
        print()
        for row in auth:
            ratio = row["throughput_ratio"]
            print(
                f"auth on vs off, c={row['connections']}: {row['auth_on_rps']} vs "
                f"{row['auth_off_rps']} req/s = {ratio:.1%} (target >= {TARGET_AUTH_RATIO:.0%}: "
                f"{'met' if ratio >= TARGET_AUTH_RATIO else 'MISSED'}); added p50 "
                f"{row['added_p50_ms']:.3f} ms; errors {row['errors']}"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported")
    p.add_argument("--serve-gateway", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--upstream", help=argparse.SUPPRESS)
    p.add_argument("--transport", default="http1", help=argparse.SUPPRESS)
    p.add_argument(
        "--auth", action="store_true", help="auth on vs off, side by side (no aiohttp gateway)"
    )
    p.add_argument("--records", action="store_true", help="request records on vs off")
    p.add_argument("--records-db", type=Path, help=argparse.SUPPRESS)
    p.add_argument(
        "--before",
        type=Path,
        help="src folder of a tree to compare with: one more target, gateway/http1@before",
    )
    p.add_argument("--output", help="name of the file under bench/results")
    args = p.parse_args(argv)
    if args.serve_gateway:
        serve_gateway(
            args.port,
            args.upstream,
            args.transport,
            args.auth,
            args.records_db,
        )
        return 0
    output = args.output or (
        "gateway-issue12-records-auth"
        if args.auth and args.records
        else "gateway-issue11-auth"
        if args.auth
        else "gateway-issue12-records"
        if args.records
        else "gateway"
    )
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as tmp:
        print(
            f"gateway bench: {args.rounds} rounds, {args.duration} s per run; logs in {tmp}",
            flush=True,
        )
        doc = run(
            args.duration,
            args.rounds,
            Path(tmp),
            args.auth,
            args.before,
            args.records,
        )
    path = write_results(output, doc)
    print_table(doc)
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
