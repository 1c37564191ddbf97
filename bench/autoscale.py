"""Autoscaling under a load step: Podium vs Ray Serve (its autoscaling defaults).

    python bench/autoscale.py                  # what `make bench` runs (needs .[bench])
    python bench/autoscale.py --hold 20 --skip-ray

A python model that takes 50 ms per request (a sleep: it needs no CPU, so 2 cores are
enough for 8 replicas). Podium: endpoint with target_concurrency 4, min 1, max 8 replicas
(fork start mode, the default). Ray Serve: the same model as a deployment with
autoscaling min 1, max 8 and every other autoscaling setting at Ray's default
(target_ongoing_requests 2, upscale_delay_s 30, look_back_period_s 30, …).

Closed-loop clients (aiohttp, each sends its next request when the last one is answered)
step through `--steps` concurrency levels (default 1, then 32), holding each for `--hold`
seconds, while the replica count is sampled every 100 ms. For each step: `needed` (the
replicas the system's own target asks for: ceil(clients / target), within min..max), the
seconds from the step until the ready replicas reach `needed` (null: not within the
step), the most replicas seen (overshoot = most - needed), requests/s and latency
percentiles. Results: bench/results/autoscale.json and a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from common import PYTHON, Processes, free_port, machine, wait_ready, write_results

from podium.client import PodiumClient

SLEEP_S = 0.05
MAX_REPLICAS = 8
PODIUM_TARGET = 4
RAY_TARGET = 2  # Ray Serve's default target_ongoing_requests (2.32 and later)
MODEL_PY = f"""\
import time


class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        time.sleep({SLEEP_S})
        return inputs
"""


# ---------------------------------------------------------------------- load and sampling


class Sampler(threading.Thread):
    """Calls `count()` every 100 ms and keeps (t, ready replicas)."""

    def __init__(self, count: Callable[[], int]) -> None:
        super().__init__(daemon=True)
        self.count = count
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((time.monotonic(), self.count()))
            self.stop.wait(0.1)


async def drive(url: str, steps: list[int], hold: float) -> list[dict[str, Any]]:
    """Run the steps; per step: start time, clients, latencies (s), errors."""
    out: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=120)
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:
        for clients in steps:
            step = {"clients": clients, "t0": time.monotonic(), "lat": [], "errors": 0}
            end = step["t0"] + hold

            async def client(step: dict[str, Any] = step, end: float = end) -> None:
                while time.monotonic() < end:
                    t = time.perf_counter()
                    try:
                        async with http.post(url, json={"inputs": "x"}) as r:
                            await r.read()
                            ok = r.status == 200
                    except aiohttp.ClientError:
                        ok = False
                    if ok:
                        step["lat"].append(time.perf_counter() - t)
                    else:
                        step["errors"] += 1
                        await asyncio.sleep(0.05)

            await asyncio.gather(*(client() for _ in range(clients)))
            out.append(step)
    return out


def report(
    steps: list[dict[str, Any]], samples: list[tuple[float, int]], target: float, hold: float
) -> list[dict[str, Any]]:
    rows = []
    for s in steps:
        needed = min(MAX_REPLICAS, max(1, math.ceil(s["clients"] / target)))
        seen = [(t - s["t0"], n) for t, n in samples if s["t0"] <= t < s["t0"] + hold]
        covered = next((dt for dt, n in seen if n >= needed), None)
        lat = sorted(s["lat"])
        rows.append(
            {
                "clients": s["clients"],
                "needed": needed,
                "cover_s": None if covered is None else round(covered, 2),
                "most": max((n for _, n in seen), default=0),
                "overshoot": max((n for _, n in seen), default=0) - needed,
                "rps": round(len(lat) / hold, 1),
                "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
                "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
                "errors": s["errors"],
            }
        )
    return rows


# ---------------------------------------------------------------------- Podium


def podium(work: Path, steps: list[int], hold: float) -> dict[str, Any]:
    bundle = work / "sleepy"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "model.py").write_text(MODEL_PY)
    home, port = work / "podium", free_port()
    url = f"http://127.0.0.1:{port}"
    procs = Processes(work)
    env = {"PODIUM_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    server = procs.start(
        "podium", [PYTHON, "-m", "podium", "up", "--port", str(port), "--no-demo", "--no-auth"], env
    )
    try:
        wait_ready(url + "/api/v1/health", proc=server)
        with PodiumClient(url, timeout=120) as c:
            c.push_model(bundle, "sleepy", framework="python")
            scaling = {
                "min_replicas": 1,
                "max_replicas": MAX_REPLICAS,
                "target_concurrency": PODIUM_TARGET,
            }
            c.deploy(
                {"name": "sleepy", "model": "sleepy", "framework": "python", "scaling": scaling}
            )
            c.wait_for("sleepy", {"running"}, timeout=120)
        with httpx.Client(base_url=url, timeout=10) as api:

            def ready() -> int:
                return int(api.get("/api/v1/endpoints/sleepy").json()["ready_replicas"])

            sampler = Sampler(ready)
            sampler.start()
            ran = asyncio.run(drive(f"{url}/endpoints/sleepy/", steps, hold))
            sampler.stop.set()
            sampler.join()
        return {
            "target_concurrency": PODIUM_TARGET,
            "steps": report(ran, sampler.samples, PODIUM_TARGET, hold),
        }
    finally:
        procs.stop_all()


# ---------------------------------------------------------------------- Ray Serve


class Sleepy:
    async def __call__(self, request: Any) -> Any:
        await request.body()
        await asyncio.sleep(SLEEP_S)
        return {"echo": "x"}


def ray_serve(steps: list[int], hold: float) -> dict[str, Any]:
    import ray
    from ray import cloudpickle, serve

    if __name__ != "__main__":  # imported (not run): ship this module's classes by value
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    autoscaling = {"min_replicas": 1, "max_replicas": MAX_REPLICAS}
    try:
        deployment = serve.deployment(
            Sleepy, name="sleepy", autoscaling_config=autoscaling, ray_actor_options={"num_cpus": 0}
        )
        serve.run(deployment.bind(), name="sleepy", route_prefix="/sleepy")

        def running() -> int:
            app = serve.status().applications.get("sleepy")
            if app is None:
                return 0
            return sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())

        sampler = Sampler(running)
        sampler.start()
        ran = asyncio.run(drive(f"http://127.0.0.1:{port}/sleepy", steps, hold))
        sampler.stop.set()
        sampler.join()
        return {
            "ray_version": ray.__version__,
            "autoscaling_config": autoscaling,
            "target_ongoing_requests": RAY_TARGET,
            "steps": report(ran, sampler.samples, RAY_TARGET, hold),
        }
    finally:
        serve.shutdown()
        ray.shutdown()


# ---------------------------------------------------------------------- main


def table(results: dict[str, Any]) -> str:
    cols = ("clients", "needed", "cover_s", "most", "overshoot", "rps", "p50_ms", "p95_ms")
    lines = [f"{'system':<10} " + " ".join(f"{c:>9}" for c in cols)]
    for system in ("podium", "ray-serve"):
        for row in results.get(system, {}).get("steps", []):
            cells = " ".join(f"{'-' if row[c] is None else row[c]!s:>9}" for c in cols)
            lines.append(f"{system:<10} {cells}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", default="1,32")
    p.add_argument("--hold", type=float, default=40.0, help="seconds per step (Podium)")
    p.add_argument("--ray-hold", type=float, default=75.0, help="seconds per step (Ray)")
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()
    start_load = round(os.getloadavg()[0], 2)  # other work on the machine skews timings
    steps = [int(x) for x in args.steps.split(",")]
    results: dict[str, Any] = {
        "machine": machine(),
        "model_sleep_s": SLEEP_S,
        "max_replicas": MAX_REPLICAS,
        "hold_s": {"podium": args.hold, "ray-serve": args.ray_hold},
    }
    with tempfile.TemporaryDirectory(prefix="podium-autoscale-") as tmp:
        print("podium …", flush=True)
        results["podium"] = podium(Path(tmp), steps, args.hold)
    if not args.skip_ray:
        print("ray serve …", flush=True)
        try:
            results["ray-serve"] = ray_serve(steps, args.ray_hold)
        except ImportError as e:
            print(f"  skipped: {e} (pip install -e '.[bench]')", flush=True)
    results["loadavg_1m_start_end"] = [start_load, round(os.getloadavg()[0], 2)]
    path = write_results("autoscale", results)
    print(table(results))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
