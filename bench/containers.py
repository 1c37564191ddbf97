"""Container replicas vs process replicas of the same server (issue 17), side by side.

    python bench/containers.py                       # what `make bench` runs
    python bench/containers.py --rounds 2 --duration 3 --wrk-rounds 1   # quicker

One real `podium up` (no auth: this measures replicas, not token checks; loopback only)
serves two endpoints of the same server, busybox `httpd` with a CGI echo:

* `proc`: a process replica, framework `command`:
  `/bin/busybox httpd -f -p 127.0.0.1:{port} -h <www>` with `<www>` written here;
* `ctr`: a container replica of the busybox test image
  (`tests.support.container_image.build_test_image`, tag `bench`), run by podman with its
  port published on 127.0.0.1 (the default network) and `PODIUM_CONTAINER_RUN_ARGS`.

Both serve `POST /cgi-bin/echo` (the body back) and `GET /health` with the same busybox
httpd; the CGI script runs under each side's `/bin/sh` (the host's dash and coreutils
`cat` for the process, busybox's inside the image). Measured, the two endpoints
interleaved:

1. Cold start from zero: each endpoint scales to zero after 1 s idle; one cold start is
   the time from sending `POST /endpoints/NAME/cgi-bin/echo` to an endpoint with no
   replica until its answer arrives (the gateway holds the request while the endpoint
   wakes). One warm-up round (not counted), then `--rounds`; median and max, with the
   `replica_ready` event's phases of each.
2. Throughput: both scaled to one replica, wrk (one thread, pinned to CPU 0) POSTs a
   small JSON body for `--duration` seconds at 1 and 16 connections, through the gateway
   and directly to the replica's port (for the container: its published port), to tell
   the gateway's share from the engine's port forwarding; `--wrk-rounds` rounds
   interleave the targets, each target's median round is reported.

Results: bench/results/containers.json and a table. Nothing is asserted: it reports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
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

sys.path[:0] = [str(ROOT), str(ROOT / "src")]
from tests.support.container_image import (  # noqa: E402
    BUSYBOX,
    build_test_image,
    engine_program,
    remove_image,
)

from podium.client import PodiumClient  # noqa: E402

BODY = b'{"inputs": "The quick brown fox jumps over the lazy dog"}'
CONNECTIONS = (1, 16)
TAG = "bench"
RUN_ARGS = "--ulimit nofile=1024:1024 --ulimit nproc=4096:4096"
ZERO_AFTER = "1s"
# The image's CGI echo; header lines end in CRLF (see tests/support/container_image.py).
ECHO_CGI = "#!/bin/sh\necho 'Content-Type: application/json\r'\necho '\r'\ncat\n"
NAMES = ("proc", "ctr")


def write_www(folder: Path) -> Path:
    """The process replica's document root: the image's `/health` and CGI echo."""
    www = folder / "www"
    (www / "cgi-bin").mkdir(parents=True)
    (www / "health").write_text("ok\n", encoding="utf-8")
    echo = www / "cgi-bin" / "echo"
    echo.write_text(ECHO_CGI, encoding="utf-8")
    echo.chmod(0o755)
    return www


def specs(www: Path, image: str) -> dict[str, dict[str, Any]]:
    scaling = {"min_replicas": 0, "max_replicas": 1, "scale_to_zero_after": ZERO_AFTER}
    command = {
        "command": str(BUSYBOX),
        "args": ["httpd", "-f", "-p", "127.0.0.1:{port}", "-h", str(www)],
        "health_route": "/health",
    }
    return {
        "proc": {
            "name": "proc",
            "model": "files",
            "framework": "command",
            "command": command,
            "scaling": scaling,
        },
        "ctr": {
            "name": "ctr",
            "model": "files",
            "framework": "container",
            "container": {"image": image, "health_route": "/health", "pull_policy": "never"},
            "scaling": scaling,
        },
    }


def cold_start(http: httpx.Client, name: str) -> dict[str, Any]:
    wait_zero(http, name)
    after = max([e["id"] for e in events(http, name)], default=0)
    t0 = time.perf_counter()
    r = http.post(f"/endpoints/{name}/cgi-bin/echo", content=BODY)
    took = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(
            f"{name}: the first request after scale to zero: {r.status_code} {r.text}"
        )
    ready = [e for e in events(http, name) if e["id"] > after and e["kind"] == "replica_ready"]
    data = ready[-1]["data"] if ready else {}
    return {"seconds": round(took, 4), "phases": data.get("phases")}


def events(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    r = http.get(f"/api/v1/endpoints/{name}/events", params={"limit": 500})
    r.raise_for_status()
    body = r.json()
    return list(body["items"] if isinstance(body, dict) else body)


def wait_zero(http: httpx.Client, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ep = http.get(f"/api/v1/endpoints/{name}").json()
        if ep["status"] == "scaled_to_zero" and not ep.get("replicas"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not scale to zero: {ep}")


def wait_one_ready(http: httpx.Client, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ep = http.get(f"/api/v1/endpoints/{name}").json()
        ready = [r for r in ep.get("replicas") or [] if r["state"] == "ready"]
        if ep["status"] == "running" and len(ready) == 1:
            return dict(ready[0])
        time.sleep(0.2)
    raise RuntimeError(f"{name} has no ready replica: {ep}")


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    return {
        "median_s": round(statistics.median(seconds), 4),
        "max_s": round(max(seconds), 4),
        "min_s": round(min(seconds), 4),
        "runs": runs,
    }


def run(rounds: int, duration_s: int, wrk_rounds: int, work: Path) -> dict[str, Any]:
    ensure_wrk()
    image = build_test_image(TAG)
    home, port = work / "home", free_port()
    url = f"http://127.0.0.1:{port}"
    procs = Processes(work)
    env = {
        "PODIUM_HOME": str(home),
        "PODIUM_CONTAINER_RUN_ARGS": RUN_ARGS,
        "HF_HUB_OFFLINE": "1",
    }
    argv = [PYTHON, "-m", "podium", "up", "--port", str(port), "--no-demo", "--no-auth"]
    server = procs.start("podium", argv, env)
    script = post_script(BODY)
    cold: dict[str, list[dict[str, Any]]] = {name: [] for name in NAMES}
    runs: list[WrkResult] = []
    try:
        wait_ready(url + "/api/v1/health", proc=server)
        files = work / "files"
        files.mkdir()
        (files / "weights.bin").write_bytes(b"0" * 1024)
        www = write_www(work)
        with PodiumClient(url, timeout=300) as c:
            c.push_model(files, "files")
            for spec in specs(www, image).values():
                c.deploy(spec)
        with httpx.Client(base_url=url, timeout=300) as http:
            for name in NAMES:
                cold_start(http, name)  # warm-up: the page cache, podman's storage
            for n in range(rounds):
                for name in NAMES if n % 2 == 0 else NAMES[::-1]:
                    one = cold_start(http, name)
                    cold[name].append(one)
                    print(
                        f"  cold start {n + 1}/{rounds} {name:5} {one['seconds']:.3f} s", flush=True
                    )
            with PodiumClient(url, timeout=300) as c:
                for name in NAMES:
                    c.scale(name, 1, 1)
            replicas = {name: wait_one_ready(http, name) for name in NAMES}
        targets: list[tuple[str, str]] = []
        for name in NAMES:
            r = replicas[name]
            targets.append((f"gateway/{name}", f"{url}/endpoints/{name}/cgi-bin/echo"))
            targets.append((f"direct/{name}", f"http://{r['host']}:{r['port']}/cgi-bin/echo"))
        for target, target_url in targets:
            wait_ready(target_url, method="POST", body=BODY, proc=server)
            run_wrk(target, target_url, script, connections=max(CONNECTIONS), duration_s=2)
        load_before = os.getloadavg()
        # Rounds interleave the targets, every other one in reverse order, so a burst of
        # other work on the machine hits all of them alike; each target's median round (by
        # throughput) is reported.
        for n in range(wrk_rounds):
            for c_count in CONNECTIONS:
                for target, target_url in targets if n % 2 == 0 else targets[::-1]:
                    result = run_wrk(
                        target, target_url, script, connections=c_count, duration_s=duration_s
                    )
                    runs.append(result)
                    print(
                        f"  round {n + 1}/{wrk_rounds} {target:14} c={c_count:<3}"
                        f" {result.requests_per_s:8.0f} req/s  p50 {result.p50_ms:7.3f} ms"
                        f"  p99 {result.p99_ms:7.3f} ms  non-2xx {result.non_2xx}",
                        flush=True,
                    )
        load_after = os.getloadavg()
    finally:
        procs.stop_all()
        script.unlink(missing_ok=True)
        leftover = subprocess.run(
            [engine_program(), "ps", "-aq", "--filter", "name=^podium-ctr-r"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.split()
        if leftover:  # the server's graceful stop removes them; a failed run may not
            subprocess.run(
                [engine_program(), "rm", "-f", *leftover], capture_output=True, timeout=60
            )
        remove_image(image)
    results = [
        median_run([r for r in runs if (r.target, r.connections) == (target, c)])
        for c in CONNECTIONS
        for target, _ in targets
    ]
    doc = report(cold, results, rounds, duration_s, wrk_rounds, load_before, load_after)
    doc["all_runs"] = [as_dict(r) for r in runs]
    return doc


def median_run(runs: list[WrkResult]) -> WrkResult:
    return sorted(runs, key=lambda r: r.requests_per_s)[len(runs) // 2]


def report(
    cold: dict[str, list[dict[str, Any]]],
    results: list[WrkResult],
    rounds: int,
    duration_s: int,
    wrk_rounds: int,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> dict[str, Any]:
    engine = subprocess.run(
        [engine_program(), "version", "--format", "{{.Client.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.strip()
    cold_summary = {name: summary(runs) for name, runs in cold.items()}
    by = {(r.target, r.connections): r for r in results}
    throughput = []
    for c in CONNECTIONS:
        proc, ctr = by[("gateway/proc", c)], by[("gateway/ctr", c)]
        throughput.append(
            {
                "connections": c,
                "gateway_proc_rps": round(proc.requests_per_s),
                "gateway_ctr_rps": round(ctr.requests_per_s),
                "ctr_of_proc": round(ctr.requests_per_s / proc.requests_per_s, 3)
                if proc.requests_per_s
                else 0,
                "direct_proc_rps": round(by[("direct/proc", c)].requests_per_s),
                "direct_ctr_rps": round(by[("direct/ctr", c)].requests_per_s),
                "gateway_p50_ms": {"proc": proc.p50_ms, "ctr": ctr.p50_ms},
            }
        )
    return {
        "machine": {**machine(), "container_engine": f"podman {engine}"},
        "command": f"python bench/containers.py --rounds {rounds} --duration {duration_s} "
        f"--wrk-rounds {wrk_rounds}",
        "load_generator": load_generator(),
        "setup": {
            "server": "podium up --no-auth, one process, SQLite; PODIUM_CONTAINER_RUN_ARGS="
            + RUN_ARGS,
            "proc": "framework command: /bin/busybox httpd -f -p 127.0.0.1:{port} -h <www>",
            "ctr": "framework container: localhost/podium-test/busybox:bench (busybox httpd), "
            "port published on 127.0.0.1",
            "request": "POST /cgi-bin/echo (a CGI shell script: cat), body " + BODY.decode(),
            "cold_start": f"scale_to_zero_after {ZERO_AFTER}; client-side time of the first "
            f"request to an endpoint at zero; 1 warm-up round, then {rounds}",
            "wrk": "wrk -t1 -cN --latency (POST), pinned with taskset -c 0, "
            f"{duration_s} s per run, after a 2 s warm-up per target; {wrk_rounds} rounds "
            "interleaving the targets (every other one reversed), each target's median round "
            "kept (`all_runs`: every run). busybox httpd closes "
            "every connection after its answer (no keep-alive): wrk reconnects for each "
            "request to a replica directly and counts each close as a socket read error "
            "(`socket_errors` of the direct runs = their requests); the gateway keeps the "
            "client's connection open",
        },
        "cold_start": cold_summary,
        "throughput": throughput,
        "results": [as_dict(r) for r in results],
        "load_average": {"before": load_before, "after": load_after},
    }


def print_table(doc: dict[str, Any]) -> None:
    print("\ncold start from zero (s)   median     max")
    for name, s in doc["cold_start"].items():
        print(f"  {name:24} {s['median_s']:7.3f} {s['max_s']:7.3f}")
    print(
        "\nthroughput (req/s)   conn  gateway/proc  gateway/ctr  ctr/proc  direct/proc  direct/ctr"
    )
    for t in doc["throughput"]:
        print(
            f"  {'':18} {t['connections']:4} {t['gateway_proc_rps']:13} {t['gateway_ctr_rps']:12}"
            f" {t['ctr_of_proc']:9.2f} {t['direct_proc_rps']:12} {t['direct_ctr_rps']:11}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="cold starts per endpoint")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--wrk-rounds", type=int, default=3, help="wrk rounds per target")
    parser.add_argument("--output", default="containers", help="results file name")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="podium-bench-ctr-") as tmp:
        doc = run(args.rounds, args.duration, args.wrk_rounds, Path(tmp))
    path = write_results(args.output, doc)
    print_table(doc)
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
