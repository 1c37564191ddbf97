"""Async tasks (issue 13): intake rate, end-to-end tasks/s and queue wait, SQLite and PostgreSQL.

    python bench/tasks.py                         # what `make bench` runs
    python bench/tasks.py --stores sqlite --clients 16 --duration 5 --tasks 1000

A real `podium up --no-auth` per store with an echo python model (`predict` returns its
inputs; no sleep, so the queue and the dispatcher are what is measured), endpoint
`max_concurrency` 8, one replica. PostgreSQL: a fresh database on the server at
$PODIUM_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres), created
before the run and dropped after it (`PODIUM_DATABASE_URL` points the server at it).

For each store:
(a) intake: `--clients` concurrent clients (httpx async, one connection each) POST
    `/endpoints/echo/async/` for `--duration` s; accepted (202) per second, the latency of
    a 202 (p50/p99) and anything else counted as errors. The dispatcher runs meanwhile, as
    it would; the queue is then let to drain.
(b) end-to-end: `--tasks` tasks are enqueued as fast as the clients can; tasks/s is that
    count over the time from the first enqueue until every one is finished (the endpoint's
    task list has nothing pending or running; polled every 50 ms).
(c) queue wait: every task of (b) is read back (`GET /api/v1/tasks/{id}`): p50/p99 of
    `started_at - created_at` (first attempt) and of `finished_at - created_at`, and how
    many succeeded.

Results: bench/results/tasks.json and a table. Not in CI: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from common import PYTHON, Processes, free_port, machine, wait_ready, write_results

from podium.client import PodiumClient

ENDPOINT = "echo"
MODEL_PY = """\
class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        return {"echo": inputs}
"""
PG_ADMIN = os.environ.get(
    "PODIUM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


# ---------------------------------------------------------------------- stores


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"podium_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------- load


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(1000 * s[min(len(s) - 1, int(p * (len(s) - 1) + 0.5))], 2)


async def intake(url: str, clients: int, duration: float) -> dict[str, Any]:
    """(a): closed-loop clients POSTing async calls for `duration` seconds."""
    lat: list[float] = []
    errors: dict[str, int] = {}
    end = time.monotonic() + duration

    async def client(i: int) -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            n = 0
            while time.monotonic() < end:
                t = time.perf_counter()
                try:
                    r = await http.post(f"/endpoints/{ENDPOINT}/async/", json={"inputs": [i, n]})
                    key = str(r.status_code)
                except httpx.HTTPError as e:
                    key = type(e).__name__
                n += 1
                if key == "202":
                    lat.append(time.perf_counter() - t)
                else:
                    errors[key] = errors.get(key, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    took = time.monotonic() - started
    return {
        "clients": clients,
        "duration_s": round(took, 2),
        "accepted": len(lat),
        "accepted_per_s": round(len(lat) / took, 1),
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "errors": errors,
    }


async def open_tasks(http: httpx.AsyncClient) -> int:
    """Tasks of the endpoint still pending or running (at most 1 each: a yes/no)."""
    n = 0
    for status in ("pending", "running"):
        r = await http.get(
            f"/api/v1/endpoints/{ENDPOINT}/tasks", params={"status": status, "limit": 1}
        )
        r.raise_for_status()
        n += len(r.json()["items"])
    return n


async def drain(url: str, timeout: float = 600) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        deadline = time.monotonic() + timeout
        while await open_tasks(http):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the queue did not drain within {timeout:g} s")
            await asyncio.sleep(0.05)


async def end_to_end(url: str, clients: int, tasks: int) -> dict[str, Any]:
    """(b) and (c): enqueue `tasks`, wait until all are finished, read each back."""
    ids: list[str] = []
    refused = 0
    todo = iter(range(tasks))

    async def client() -> None:
        nonlocal refused
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            for i in todo:
                r = await http.post(f"/endpoints/{ENDPOINT}/async/", json={"inputs": i})
                if r.status_code == 202:
                    ids.append(r.json()["task_id"])
                else:
                    refused += 1

    first = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    enqueued = time.monotonic()
    await drain(url)
    done = time.monotonic()
    waits: list[float] = []
    totals: list[float] = []
    statuses: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        sem = asyncio.Semaphore(clients)

        async def read(task_id: str) -> None:
            async with sem:
                r = await http.get(f"/api/v1/tasks/{task_id}")
            r.raise_for_status()
            t = r.json()
            statuses[t["status"]] = statuses.get(t["status"], 0) + 1
            if t["started_at"] is not None:
                waits.append(t["started_at"] - t["created_at"])
            if t["finished_at"] is not None:
                totals.append(t["finished_at"] - t["created_at"])

        await asyncio.gather(*(read(i) for i in ids))
    return {
        "tasks": tasks,
        "enqueued": len(ids),
        "refused": refused,
        "enqueue_s": round(enqueued - first, 2),
        "all_done_s": round(done - first, 2),
        "tasks_per_s": round(len(ids) / (done - first), 1),
        "statuses": statuses,
        "queue_wait_p50_ms": pct(waits, 0.5),
        "queue_wait_p99_ms": pct(waits, 0.99),
        "done_p50_ms": pct(totals, 0.5),
        "done_p99_ms": pct(totals, 0.99),
    }


# ---------------------------------------------------------------------- one server


def run_store(
    store: str, work: Path, clients: int, duration: float, tasks: int, database_url: str | None
) -> dict[str, Any]:
    bundle = work / "echo-model"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "model.py").write_text(MODEL_PY)
    home, port = work / f"home-{store}", free_port()
    url = f"http://127.0.0.1:{port}"
    procs = Processes(work)
    env = {"PODIUM_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    if database_url is not None:
        env["PODIUM_DATABASE_URL"] = database_url
    argv = [PYTHON, "-m", "podium", "up", "--port", str(port), "--no-demo", "--no-auth"]
    server = procs.start(f"podium-{store}", argv, env)
    try:
        wait_ready(url + "/api/v1/health", proc=server)
        with PodiumClient(url, timeout=120) as c:
            c.push_model(bundle, "echo-model", framework="python")
            spec = {
                "name": ENDPOINT,
                "model": "echo-model",
                "framework": "python",
                "max_concurrency": 8,
                "scaling": {"min_replicas": 1, "max_replicas": 1},
            }
            c.deploy(spec)
            c.wait_for(ENDPOINT, {"running"}, timeout=120)
        a = asyncio.run(intake(url, clients, duration))
        asyncio.run(drain(url))
        b = asyncio.run(end_to_end(url, clients, tasks))
        return {"store": store, "intake": a, "end_to_end": b}
    finally:
        procs.stop_all()


def table(results: list[dict[str, Any]]) -> str:
    cols = [
        ("store", "", 9),
        ("intake/s", "", 10),
        ("202 p50", "ms", 9),
        ("202 p99", "ms", 9),
        ("errors", "", 8),
        ("tasks/s", "", 9),
        ("wait p50", "ms", 10),
        ("wait p99", "ms", 10),
        ("done p99", "ms", 10),
        ("ok", "", 6),
    ]
    lines = [
        "".join(
            f"{name:<{w}}" if i == 0 else f"{name:>{w}}" for i, (name, _, w) in enumerate(cols)
        ),
        "".join(f"{'':<{w}}" if i == 0 else f"{unit:>{w}}" for i, (_, unit, w) in enumerate(cols)),
    ]
    for r in results:
        a, b = r["intake"], r["end_to_end"]
        cells = [
            r["store"],
            a["accepted_per_s"],
            a["p50_ms"],
            a["p99_ms"],
            sum(a["errors"].values()),
            b["tasks_per_s"],
            b["queue_wait_p50_ms"],
            b["queue_wait_p99_ms"],
            b["done_p99_ms"],
            b["statuses"].get("succeeded", 0),
        ]
        lines.append(
            "".join(
                f"{c!s:<{w}}" if i == 0 else f"{'-' if c is None else c!s:>{w}}"
                for i, (c, (_, _, w)) in enumerate(zip(cells, cols, strict=True))
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both")
    p.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of intake (a)")
    p.add_argument("--tasks", type=int, default=2000, help="tasks of the end-to-end run (b)")
    p.add_argument("--output", default="tasks", help="name of the file under bench/results")
    args = p.parse_args(argv)
    start_load = round(os.getloadavg()[0], 2)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="podium-tasks-") as tmp:
        for store in [s.strip() for s in args.stores.split(",") if s.strip()]:
            print(f"{store} …", flush=True)
            work = Path(tmp) / store
            work.mkdir()
            if store == "postgres":
                try:
                    with postgres_database() as db_url:
                        results.append(
                            run_store(store, work, args.clients, args.duration, args.tasks, db_url)
                        )
                except (ImportError, OSError) as e:
                    print(f"  skipped: {e}", flush=True)
                except Exception as e:  # psycopg.OperationalError: no server here
                    if type(e).__name__ != "OperationalError":
                        raise
                    print(f"  skipped: PostgreSQL unreachable at {PG_ADMIN}: {e}", flush=True)
            elif store == "sqlite":
                results.append(
                    run_store(store, work, args.clients, args.duration, args.tasks, None)
                )
            else:
                p.error(f"--stores: unknown store {store!r} (sqlite, postgres)")
    doc: dict[str, object] = {
        "machine": machine(),
        "clients": args.clients,
        "intake_duration_s": args.duration,
        "tasks": args.tasks,
        "results": results,
        "loadavg_1m_start_end": [start_load, round(os.getloadavg()[0], 2)],
    }
    path = write_results(args.output, doc)
    print(table(results))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
