"""The control plane at scale: 1,000 endpoints, scaled to zero, on PostgreSQL.

    python bench/scale.py                      # 1,000 endpoints on PostgreSQL (issue 16)
    python bench/scale.py --store sqlite       # the same on SQLite, for comparison
    python bench/scale.py --endpoints 200 --idle-s 10 --wakes 3

A real `podium up` (tests.support.server, auth on) on a fresh PostgreSQL database
(`podium_bench_<hex>` on $PODIUM_TEST_POSTGRES_URL's server, dropped at the end) gets one
model (`iris`, sklearn, skops) and N endpoints on it, created through the API by a few
parallel clients with `scaling: {min_replicas: 0}`: they go to `scaled_to_zero` and no
replica starts. Then, in one run:

* list: `GET /api/v1/endpoints` as the dashboard and the CLI call it (the API does not
  page: every endpoint is in the one answer), `--calls` times in a row; p50/p95 of the
  wall time, and the server's CPU time per call;
* idle: the server process's CPU over `--idle-s` seconds with nothing asked of it (psutil
  `cpu_times` deltas of the process and of each of its threads; a thread is named by
  py-spy's dump when py-spy is installed, else by its OS name): the controller thread
  (`podium-controller`) against the rest, as a share of one core;
* wake: the first request to one scaled-to-zero endpoint until its 200, `--wakes` times
  (after one warm-up that lets the zygote import sklearn), against the same on a second
  server, on a database of its own, with that one endpoint only (the usual cold start).

Nothing is asserted: the targets (issue 16: list p50 < 50 ms, idle controller < 5 % of a
core, the wake no slower than the usual cold start) are reported against the figures in
bench/results/scale.json (or scale-sqlite.json).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from common import machine, write_results  # noqa: E402
from tests.support.models import train_iris_skops  # noqa: E402
from tests.support.server import ServerProcess, free_port  # noqa: E402

ADMIN_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IRIS = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}
WAKE = "wake-me"  # the endpoint woken, on both servers
TARGETS = {"list_p50_ms": 50.0, "idle_controller_core_percent": 5.0}


@contextmanager
def database(store: str, home: Path) -> Iterator[str]:
    """A fresh database URL for one server: a new PostgreSQL database, dropped after."""
    if store == "sqlite":
        yield f"sqlite:///{home / 'podium.db'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"podium_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(store: str, home: Path) -> Iterator[ServerProcess]:
    with database(store, home) as url:
        proc = ServerProcess(home, free_port(), {"PODIUM_DATABASE_URL": url})
        proc.start(timeout=120)
        try:
            yield proc
        finally:
            proc.stop()


def create_endpoints(srv: ServerProcess, count: int, clients: int) -> float:
    """`count` endpoints at zero (one of them `WAKE`, back to zero 1 s after a request),
    `clients` creates at a time; returns the seconds it took until all are at zero."""
    started = time.monotonic()
    with srv.client() as client:
        client.push_model(train_iris_skops(srv.home / "iris"), "iris")
    zero = {"min_replicas": 0, "max_replicas": 1}
    specs = [{"name": WAKE, "model": "iris", "scaling": zero | {"scale_to_zero_after": "1s"}}]
    specs += [
        {"name": f"bench-{i:04d}", "model": "iris", "scaling": zero} for i in range(count - 1)
    ]
    with httpx.Client(base_url=srv.url, headers=srv.headers, timeout=120) as http:

        def create(spec: dict[str, Any]) -> None:
            http.post("/api/v1/endpoints", json=spec).raise_for_status()

        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(create, specs))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            items = http.get("/api/v1/endpoints").json()["items"]
            if len(items) == count and {e["status"] for e in items} == {"scaled_to_zero"}:
                return round(time.monotonic() - started, 1)
            time.sleep(1)
    raise RuntimeError("the endpoints did not all reach scaled_to_zero")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_list(srv: ServerProcess, calls: int) -> dict[str, Any]:
    assert srv.proc is not None
    proc = psutil.Process(srv.proc.pid)
    took: list[float] = []
    size = 0
    with httpx.Client(base_url=srv.url, headers=srv.headers, timeout=120) as http:
        http.get("/api/v1/endpoints").raise_for_status()  # warm: imports, caches, pool
        cpu0 = sum(proc.cpu_times()[:2])
        for _ in range(calls):
            t0 = time.perf_counter()
            r = http.get("/api/v1/endpoints")
            took.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            size = len(r.content)
        cpu = (sum(proc.cpu_times()[:2]) - cpu0) * 1000 / calls
    out = {
        "calls": calls,
        "p50_ms": round(statistics.median(took), 1),
        "p95_ms": round(percentile(took, 0.95), 1),
        "max_ms": round(max(took), 1),
        "server_cpu_ms_each": round(cpu, 1),
        "bytes": size,
        "paged": False,  # the API answers every endpoint at once (no limit parameter)
    }
    print(f"list: {out}", flush=True)
    return out


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id → Python thread name, from `py-spy dump` (root may be needed); {} if
    py-spy is missing or cannot attach."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {}
    try:
        out = subprocess.run(
            [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    names: dict[int, str] = {}
    for m in re.finditer(r"^Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): \"([^\"]*)\"", out, re.M):
        ident = m.group(1)
        if not ident.startswith("0x"):
            names[int(ident)] = m.group(2)
    return names


def idle_cpu(srv: ServerProcess, seconds: float) -> dict[str, Any]:
    assert srv.proc is not None
    proc = psutil.Process(srv.proc.pid)
    names = thread_names(proc.pid)

    def per_thread() -> dict[int, float]:
        return {t.id: t.user_time + t.system_time for t in proc.threads()}

    time.sleep(3)  # let the list calls' work settle
    before, total0, t0 = per_thread(), sum(proc.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)
    after, total1, wall = per_thread(), sum(proc.cpu_times()[:2]), time.monotonic() - t0
    by_name: dict[str, float] = {}
    for tid, used in after.items():
        delta = used - before.get(tid, 0.0)
        name = names.get(tid) or _os_name(proc.pid, tid)
        by_name[name] = by_name.get(name, 0.0) + delta
    share = {k: round(v / wall * 100, 2) for k, v in sorted(by_name.items(), key=lambda i: -i[1])}
    out = {
        "seconds": round(wall, 1),
        "process_core_percent": round((total1 - total0) / wall * 100, 2),
        "controller_core_percent": share.get("podium-controller"),
        "threads_core_percent": {k: v for k, v in share.items() if v > 0},
        "threads_named_by": "py-spy" if names else "/proc comm",
    }
    print(f"idle: {out}", flush=True)
    return out


def _os_name(pid: int, tid: int) -> str:
    try:
        return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip() + f"#{tid}"
    except OSError:
        return f"#{tid}"


def time_wakes(srv: ServerProcess, wakes: int) -> dict[str, Any]:
    runs: list[float] = []
    with httpx.Client(base_url=srv.url, headers=srv.headers, timeout=300) as http:
        for i in range(wakes + 1):  # the first: a warm-up (the zygote imports sklearn)
            _wait_zero(http)
            t0 = time.perf_counter()
            r = http.post(f"/endpoints/{WAKE}/", json=IRIS)
            took = time.perf_counter() - t0
            if r.status_code != 200:
                raise RuntimeError(f"the wake answered {r.status_code}: {r.text[:300]}")
            if i:
                runs.append(round(took, 3))
    out = {"median_s": statistics.median(runs), "runs_s": runs}
    print(f"wake: {out}", flush=True)
    return out


def _wait_zero(http: httpx.Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ep = http.get(f"/api/v1/endpoints/{WAKE}").json()
        if ep["status"] == "scaled_to_zero" and not ep.get("replicas"):
            time.sleep(0.5)  # the replica's process is gone, not only its row
            return
        time.sleep(0.2)
    raise RuntimeError(f"{WAKE} did not scale to zero: {ep}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=6, help="parallel creates")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--wakes", type=int, default=5)
    parser.add_argument("--label", default="", help="a note kept in the results (before/after)")
    args = parser.parse_args()
    # SIGTERM (a `timeout`, a kill) unwinds like Ctrl-C: the servers stop, the databases
    # are dropped.
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="podium-bench-scale-") as tmp:
        with server(args.store, Path(tmp) / "many") as srv:
            created_s = create_endpoints(srv, args.endpoints, args.clients)
            print(f"{args.endpoints} endpoints at zero after {created_s} s", flush=True)
            listed = time_list(srv, args.calls)
            idle = idle_cpu(srv, args.idle_s)
            wake = time_wakes(srv, args.wakes)
        with server(args.store, Path(tmp) / "one") as srv:
            create_endpoints(srv, 1, 1)
            usual = time_wakes(srv, args.wakes)
    doc: dict[str, Any] = {
        "benchmark": "control plane at scale",
        "label": args.label,
        "store": args.store,
        "endpoints": args.endpoints,
        "created_s": created_s,
        "list": listed,
        "idle": idle,
        "wake": {"many": wake, "one_endpoint": usual},
        "targets": TARGETS | {"wake": "many.median_s <= one_endpoint.median_s (noise aside)"},
        "load_average": os.getloadavg(),
        "machine": machine(),
    }
    path = write_results("scale" if args.store == "postgres" else "scale-sqlite", doc)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
