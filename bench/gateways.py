"""Two gateway processes against one (issue 16): throughput on the echo model.

    python bench/gateways.py                          # what `make bench` runs; needs PostgreSQL
    python bench/gateways.py --duration 5 --rounds 1  # quicker

On a fresh PostgreSQL database (`podium_bench_<hex>`, created on the server at
$PODIUM_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test, dropped at
the end) and one shared home: an API process, one controller and two gateway processes
(`podium server --roles api|controller|gateway`, each on its own port, auth on: the load
sends the admin token from the home's `credentials` file). An echo model on the `python`
runtime runs in `--replicas` replicas (default 2, `max_concurrency` 128 each), so the
replicas are not what limits a gateway.

Each round measures, for `--duration` seconds, two modes one after the other (every other
round in reverse order, so neither always runs second):

* `one`: one load generator at 64 connections against gateway 1 alone;
* `two`: two load generators at once, 32 connections each, one per gateway (summed).

The load generator is wrk (one thread, not pinned: the comparison is one generator process
against two) or, without wrk, `bench/pyload.py`. During each run the CPU time (user +
system) of every process is read before and after (psutil), so the report says how many
cores each used: the gateways, the replicas, the API, the controller, the load generators
(`RUSAGE_CHILDREN`: the bench waits for nothing else during a run) and the rest of the
machine (PostgreSQL, zygotes, anything else running). The ratio two/one is bounded by the
cores the machine has: on 2 cores, gateways, replicas and load generators share the same
two, so a second gateway can only take CPU from the others. Each mode's median round (by
throughput) is reported with its p50/p99 latency (for `two`, each generator's own figures,
and the worse of the two). Results: bench/results/gateways.json and a printed table.

It measures and reports; it asserts nothing. Target reported against: two/one >= 1.7 on a
machine with the cores for it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from common import (
    PYLOAD,
    PYTHON,
    Processes,
    WrkResult,
    as_dict,
    ensure_wrk,
    free_port,
    load_generator,
    machine,
    parse_wrk,
    post_script,
    wait_ready,
    write_results,
)
from sqlalchemy.engine import make_url

from podium.client import PodiumClient

ADMIN_URL = os.environ.get("PODIUM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BODY = b'{"inputs": "The quick brown fox jumps over the lazy dog"}'
CONNECTIONS = 64  # in all, in both modes
TARGET_RATIO = 1.7
MAX_CONCURRENCY = 128  # per replica: more than the 64 connections, so never the limit
MODES = ("one", "two")
MODEL_PY = """\
class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        return inputs
"""


class Fleet:
    """The server processes of the run on one database and one home: API, controller and
    two gateways, each a `podium server` with its roles."""

    def __init__(self, work: Path, database_url: str) -> None:
        self.home = work / "home"
        self.procs = Processes(work)
        self.env = {
            "PODIUM_HOME": str(self.home),
            "PODIUM_DATABASE_URL": database_url,
            "HF_HUB_OFFLINE": "1",
        }
        self.pids: dict[str, int] = {}  # process name -> pid, for the CPU figures
        self.urls: dict[str, str] = {}

    def start(self, name: str, roles: str) -> str:
        port = free_port()
        argv = [PYTHON, "-m", "podium", "server", "--roles", roles, "--port", str(port)]
        proc = self.procs.start(name, argv, self.env)
        url = f"http://127.0.0.1:{port}"
        if "api" in roles:  # first: it writes the admin token the others read from the home
            wait_ready(url + "/api/v1/health", proc=proc)
        else:  # no API: its own /metrics answers once start-up has ended
            wait_ready(url + "/metrics", proc=proc, headers=self.headers())
        self.pids[name] = proc.pid
        self.urls[name] = url
        return url

    @property
    def token(self) -> str:
        return (self.home / "credentials").read_text().strip()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Load:
    """One load generator process running against one gateway."""

    target: str
    connections: int
    proc: subprocess.Popen[str]

    def result(self, duration_s: int) -> WrkResult:
        out, err = self.proc.communicate(timeout=duration_s + 60)
        if self.proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({self.proc.returncode}):\n{err}")
        return parse_wrk(out, self.target, self.connections, duration_s)


def start_load(target: str, url: str, script: Path, connections: int, duration_s: int) -> Load:
    """wrk (one thread) or pyload, not pinned, started without waiting for it."""
    tool = ensure_wrk()
    if tool == PYLOAD:
        argv = [PYTHON, tool, f"-c{connections}", f"-d{duration_s}", "-s", str(script), url]
    else:
        argv = [tool, "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s"]
        argv += [str(script), url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Load(target, connections, proc)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) each process used so far, the load generators this
    process has waited for (`load`), PostgreSQL's processes alive now (`postgres`: its
    backends for the servers' pools live as long as the pools) and the whole machine
    (`machine`, busy time)."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
        except psutil.Error:  # gone: counted as nothing
            out[name] = 0.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["load"] = children.ru_utime + children.ru_stime
    out["postgres"] = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] == "postgres" and proc.info["cpu_times"] is not None:
            out["postgres"] += proc.info["cpu_times"].user + proc.info["cpu_times"].system
    total = psutil.cpu_times()
    out["machine"] = total.user + total.nice + total.system + total.irq + total.softirq
    return out


def measure(
    mode: str, fleet: Fleet, pids: dict[str, int], script: Path, duration_s: int
) -> dict[str, Any]:
    """One run of `mode`: the load generators' results and each process's cores used."""
    if mode == "one":
        plan = [("gateway-1", CONNECTIONS)]
    else:
        plan = [("gateway-1", CONNECTIONS // 2), ("gateway-2", CONNECTIONS // 2)]
    before = cpu_seconds(pids)
    started = time.monotonic()
    loads = [
        start_load(g, fleet.urls[g] + "/endpoints/echo/", script, c, duration_s) for g, c in plan
    ]
    results = [load.result(duration_s) for load in loads]
    wall = time.monotonic() - started
    after = cpu_seconds(pids)
    cores = {name: round((after[name] - before[name]) / wall, 3) for name in after}
    named = sum(v for k, v in cores.items() if k != "machine")
    cores["other"] = round(max(cores["machine"] - named, 0.0), 3)
    requests = sum(r.requests for r in results)
    gateways = (after["gateway-1"] - before["gateway-1"]) + (
        after["gateway-2"] - before["gateway-2"]
    )
    return {
        "mode": mode,
        "requests_per_s": round(sum(r.requests_per_s for r in results), 1),
        "requests": requests,
        # what a request costs the gateways: the same in both modes unless a second
        # gateway process costs or saves something per request
        "gateway_cpu_us_per_request": round(gateways / max(requests, 1) * 1e6, 1),
        "errors": sum(r.non_2xx + r.socket_errors for r in results),
        "p50_ms": max(r.p50_ms for r in results),  # the worse generator's
        "p99_ms": max(r.p99_ms for r in results),
        "generators": [as_dict(r) for r in results],
        "cores_used": cores,
        "wall_s": round(wall, 2),
    }


def deploy_echo(fleet: Fleet, work: Path, replicas: int) -> list[int]:
    """Push and deploy the echo model; the replicas' pids once all are ready."""
    bundle = work / "echo"
    bundle.mkdir()
    (bundle / "model.py").write_text(MODEL_PY, encoding="utf-8")
    with PodiumClient(fleet.urls["api"], token=fleet.token, timeout=120) as c:
        c.push_model(bundle, "echo", framework="python")
        c.deploy(
            {
                "name": "echo",
                "model": "echo",
                "framework": "python",
                "max_concurrency": MAX_CONCURRENCY,
                "max_queue": 1024,
                "scaling": {"min_replicas": replicas, "max_replicas": replicas},
            }
        )
        c.wait_for("echo", {"running"}, timeout=120)
        deadline = time.monotonic() + 120
        while c.endpoint("echo").ready_replicas < replicas:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{replicas} replicas not ready within 120 s")
            time.sleep(0.2)
        return sorted(r.pid for r in c.endpoint("echo").replicas if r.pid)


def delete_echo(fleet: Fleet) -> None:
    """On PostgreSQL a stopping server leaves its replicas to the next leader: the endpoint
    is deleted (its replicas stopped by the controller) before the servers stop."""
    with PodiumClient(fleet.urls["api"], token=fleet.token, timeout=60) as c:
        c.delete("echo")
        deadline = time.monotonic() + 60
        while any(e.name == "echo" for e in c.endpoints()):
            if time.monotonic() > deadline:
                raise RuntimeError("the endpoint was not deleted within 60 s")
            time.sleep(0.2)


def run(
    work: Path, database_url: str, duration_s: int, rounds: int, replicas: int
) -> dict[str, Any]:
    ensure_wrk()
    fleet = Fleet(work, database_url)
    script: Path | None = None
    replica_pids: list[int] = []
    try:
        fleet.start("api", "api")
        fleet.start("controller", "controller")
        fleet.start("gateway-1", "gateway")
        fleet.start("gateway-2", "gateway")
        replica_pids = deploy_echo(fleet, work, replicas)
        script = post_script(BODY, headers=fleet.headers())
        for g in ("gateway-1", "gateway-2"):  # the route is in both gateways' tables
            wait_ready(
                fleet.urls[g] + "/endpoints/echo/",
                method="POST",
                body=BODY,
                headers=fleet.headers(),
            )
        pids = {**fleet.pids, **{f"replica-{i + 1}": p for i, p in enumerate(replica_pids)}}
        measure("two", fleet, pids, script, 2)  # warm-up: both gateways, both replicas
        runs: list[dict[str, Any]] = []
        load_before = os.getloadavg()
        for n in range(rounds):
            for mode in MODES if n % 2 == 0 else MODES[::-1]:
                row = measure(mode, fleet, pids, script, duration_s)
                row["round"] = n + 1
                runs.append(row)
                print(
                    f"  round {n + 1}/{rounds} {mode:3} {row['requests_per_s']:8.0f} req/s"
                    f"  p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms"
                    f"  errors {row['errors']}  cores {row['cores_used']}",
                    flush=True,
                )
        load_after = os.getloadavg()
    finally:
        if script is not None:
            script.unlink(missing_ok=True)
        try:
            if "api" in fleet.urls:
                delete_echo(fleet)
        except Exception as e:  # a failed run: say so, still stop everything
            print(f"cleanup: {e}", file=sys.stderr)
        fleet.procs.stop_all()
        for pid in replica_pids:  # should be gone with the endpoint; by PID if not
            with contextlib.suppress(psutil.Error):
                replica = psutil.Process(pid)
                if "podium.replica" in " ".join(replica.cmdline()):  # not a reused pid
                    replica.kill()
    return report(runs, duration_s, rounds, replicas, (load_before, load_after))


def median_run(runs: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    mine = sorted((r for r in runs if r["mode"] == mode), key=lambda r: r["requests_per_s"])
    return mine[len(mine) // 2]


def report(
    runs: list[dict[str, Any]],
    duration_s: int,
    rounds: int,
    replicas: int,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> dict[str, Any]:
    one, two = median_run(runs, "one"), median_run(runs, "two")
    ratio = two["requests_per_s"] / one["requests_per_s"] if one["requests_per_s"] else 0.0
    # Per round, too: both modes of a round ran next to each other.
    per_round = []
    for n in range(1, rounds + 1):
        pair = {r["mode"]: r["requests_per_s"] for r in runs if r["round"] == n}
        per_round.append(round(pair["two"] / pair["one"], 3) if pair["one"] else 0.0)
    return {
        "benchmark": "gateways",
        "machine": machine(),
        "command": f"python bench/gateways.py --duration {duration_s} --rounds {rounds}",
        "load_generator": load_generator(),
        "setup": {
            "servers": "podium server --roles api | controller | gateway | gateway, "
            "one PostgreSQL database, one home, auth on (admin token)",
            "replicas": f"{replicas} x python runtime echo model, max_concurrency "
            f"{MAX_CONCURRENCY}, max_queue 1024",
            "one": f"1 generator x {CONNECTIONS} connections -> gateway-1",
            "two": f"2 generators x {CONNECTIONS // 2} connections, one per gateway (summed)",
            "duration_s": duration_s,
            "rounds": rounds,
            "body": BODY.decode(),
            "pinning": "none (one generator process against two)",
        },
        "targets": {"two_over_one_min": TARGET_RATIO, "on": "a machine with the cores for it"},
        "summary": {
            "one_rps": one["requests_per_s"],
            "two_rps": two["requests_per_s"],
            "ratio": round(ratio, 3),
            "ratio_per_round": per_round,
            "ratio_median_of_rounds": round(statistics.median(per_round), 3),
            "one_p50_ms": one["p50_ms"],
            "one_p99_ms": one["p99_ms"],
            "two_p50_ms": two["p50_ms"],
            "two_p99_ms": two["p99_ms"],
            "one_gateway_cpu_us_per_request": one["gateway_cpu_us_per_request"],
            "two_gateway_cpu_us_per_request": two["gateway_cpu_us_per_request"],
            "one_cores_used": one["cores_used"],
            "two_cores_used": two["cores_used"],
        },
        "runs": runs,
        "load_average": {"before": load[0], "after": load[1]},
    }


def print_table(doc: dict[str, Any]) -> None:
    s = doc["summary"]
    m = doc["machine"]
    print()
    print(
        f"{'mode':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'gw µs/req':>10}"
        "   cores used (median round)"
    )
    for mode in MODES:
        cores = s[f"{mode}_cores_used"]
        shown = "  ".join(f"{k} {v:.2f}" for k, v in cores.items())
        print(
            f"{mode:6} {s[f'{mode}_rps']:>9.0f} {s[f'{mode}_p50_ms']:>8.2f}"
            f" {s[f'{mode}_p99_ms']:>8.2f} {s[f'{mode}_gateway_cpu_us_per_request']:>10.1f}"
            f"   {shown}"
        )
    print()
    verdict = "met" if s["ratio"] >= TARGET_RATIO else "not met"
    print(
        f"two gateways / one: {s['ratio']:.2f}x (per round {s['ratio_per_round']}); "
        f"target >= {TARGET_RATIO}x on a machine with the cores for it: {verdict} on "
        f"{m['nproc']} cores ({doc['load_generator']})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported")
    p.add_argument("--replicas", type=int, default=2, help="replicas of the echo model")
    p.add_argument("--output", default="gateways", help="name of the file under bench/results")
    args = p.parse_args(argv)
    name = f"podium_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory(prefix="podium-gateways-") as tmp:
            print(
                f"gateways bench: {args.rounds} rounds, {args.duration} s per run; logs in {tmp}",
                flush=True,
            )
            doc = run(Path(tmp), url, args.duration, args.rounds, args.replicas)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    path = write_results(args.output, doc)
    print_table(doc)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
