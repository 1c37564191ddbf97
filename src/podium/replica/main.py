"""`python -m podium.replica`: load one model, then serve it over HTTP.

    python -m podium.replica --replica-id ID --endpoint NAME --revision N \\
        --runtime FRAMEWORK --model-path PATH [--task T] [--trust-pickle] \\
        [--host 127.0.0.1] (--port P | --fd N) [--max-concurrency 8] [--max-queue 64] \\
        [--threads 1] [--status-file PATH] [--max-batch-size N [--max-wait-ms 5]
        [--max-concurrent-batches 1]]

`--fd N` serves on an already bound, listening socket inherited as file descriptor N (the
backend binds 127.0.0.1:0 itself, so it knows the port without a race).

The model is loaded before any socket is served. The status file (JSON, replaced
atomically) then says either {"state": "ready", "load_s", "pid", "host", "port"} or
{"state": "load_failed", "error"}; a failed load also prints one line to stderr and exits
with code 3 (the backend trusts the status file, never the exit code, which user code can
also produce). A request that runs out of memory (`memory`: the kernel limit set first
thing) writes {"state": "out_of_memory", "error"} and stops the replica gracefully.
"ready" also carries "replica_id", "start_mode" ("spawn", or "fork" for a child of a
zygote, `podium.replica.zygote`) and "times": wall-clock timestamps (`time.time()`) of
the phases of the start, "main" (this function entered; in a fork, once set up), "imported"
(the replica stack and the runtime module imported: already done in a forked child),
"loaded" (model loaded) and "listening" (serving). SIGTERM stops accepting connections,
lets in-flight requests finish, and exits 0.

Only the standard library is imported at module level: thread limits for numerical
libraries must be in the environment before numpy is first imported.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import time
import traceback
from importlib.util import find_spec
from pathlib import Path
from typing import Any

EXIT_LOAD_FAILED = 3
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m podium.replica", description=__doc__.split("\n")[0])
    p.add_argument("--replica-id", required=True)
    p.add_argument("--endpoint", required=True, help="endpoint name (the v2 model name)")
    p.add_argument("--revision", required=True, type=int)
    p.add_argument(
        "--model-version", default=None, help="the model's version (the v2 model_version)"
    )
    p.add_argument("--runtime", required=True, help="framework: sklearn, python, …")
    p.add_argument("--model-path", required=True, type=Path)
    p.add_argument("--task", default=None)
    p.add_argument("--trust-pickle", action="store_true")
    p.add_argument("--host", default="127.0.0.1")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="bind this port (0: any free port)")
    where.add_argument("--fd", type=int, help="serve on this inherited listening socket")
    p.add_argument("--max-concurrency", type=_positive, default=8)
    p.add_argument("--max-queue", type=_non_negative, default=64)
    p.add_argument("--threads", type=_positive, default=1)
    p.add_argument(
        "--max-batch-size",
        type=_positive,
        default=None,
        help="dynamic batching: most requests per predict_batch call (default: off)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=_non_negative_float,
        default=5.0,
        help="dynamic batching: wait this long after a batch's first request",
    )
    p.add_argument(
        "--max-concurrent-batches",
        type=_positive,
        default=1,
        help="dynamic batching: batches computed at once",
    )
    p.add_argument("--status-file", type=Path, default=None)
    p.add_argument(
        "--engine-arg",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="one of the endpoint's engine_args, for the runtime (repeatable)",
    )
    return p


def _option(value: str) -> tuple[str, str]:
    key, sep, text = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("must be KEY=VALUE")
    return key, text


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _non_negative(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return n


def _non_negative_float(value: str) -> float:
    x = float(value)
    if not x >= 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return x


def main(
    argv: list[str] | None = None, *, start_mode: str = "spawn", started_at: float | None = None
) -> int:
    """The replica process; a zygote's forked child calls it with `start_mode="fork"` and
    the time of the fork as `started_at`."""
    times = {"main": time.time() if started_at is None else started_at}
    # A crash in native code (a segfault at import) leaves its traceback in the log.
    faulthandler.enable()
    args = build_parser().parse_args(argv)
    from podium.replica import memory  # standard library only

    limit_mb = memory.apply_limit()  # first: the model loads under the limit too
    for name in THREAD_ENV:
        os.environ[name] = str(args.threads)
    _configure_logging()

    startup: dict[str, Any] = {
        "replica_id": args.replica_id,
        "start_mode": start_mode,
        "times": times,
    }
    started = time.monotonic()
    try:
        _import_stack(args.runtime)
        times["imported"] = time.time()
        runtime = _load(args)
    except Exception as e:
        from podium.core.errors import PodiumError

        if isinstance(e, PodiumError):
            message = e.message
        elif isinstance(e, MemoryError):
            message = f"the model does not fit in the memory limit ({limit_mb} MiB)"
        else:
            traceback.print_exc()
            message = f"{type(e).__name__}: {e}"
        print(f"replica {args.replica_id}: failed to load the model: {message}", file=sys.stderr)
        _write_status(args.status_file, {"state": "load_failed", "error": message})
        return EXIT_LOAD_FAILED
    load_s = time.monotonic() - started
    times["loaded"] = time.time()
    _limit_threadpools(args.threads)
    return _serve(args, runtime, load_s, startup=startup)


def _configure_logging() -> None:
    """stderr (the replica's log file), as text or JSON lines like the server's, as the
    inherited `PODIUM_LOG_FORMAT` says; each line a request causes names its request id
    (`app`: from the gateway's `X-Request-ID`). Standard library only, as is `log_format`."""
    from podium.core.log_format import ENV_LOG_FORMAT, install, log_handler, wants_json

    install(log_handler(wants_json(os.environ.get(ENV_LOG_FORMAT)), sys.stderr), logging.INFO)


def _import_stack(runtime: str) -> None:
    """Import what serving needs: the replica's HTTP stack and the runtime's module (a
    forked child finds them imported already; `get_runtime` in `_load` is then a lookup)."""
    import podium.replica.app
    import podium.replica.uvicorn_runner  # noqa: F401
    from podium.runtimes.registry import get_runtime

    get_runtime(runtime)


def _load(args: argparse.Namespace) -> Any:
    from podium.runtimes.base import RuntimeConfig
    from podium.runtimes.registry import get_runtime

    cls = get_runtime(args.runtime)
    config = RuntimeConfig(
        model_name=args.endpoint,
        task=args.task,
        threads=args.threads,
        trust_pickle=args.trust_pickle,
        env=dict(os.environ),
        options=dict(args.engine_arg),
    )
    runtime = cls(config)
    runtime.load(args.model_path)
    return runtime


def _limit_threadpools(threads: int) -> None:
    if find_spec("threadpoolctl") is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def _serve(
    args: argparse.Namespace, runtime: Any, load_s: float, *, startup: dict[str, Any] | None = None
) -> int:
    from podium.replica.app import BatchConfig, ReplicaInfo, create_app
    from podium.replica.uvicorn_runner import serve

    info = ReplicaInfo(
        replica_id=args.replica_id,
        endpoint=args.endpoint,
        revision=args.revision,
        runtime=args.runtime,
        pid=os.getpid(),
        model_version=args.model_version,
    )
    batching = None
    if args.max_batch_size is not None:
        batching = BatchConfig(args.max_batch_size, args.max_wait_ms, args.max_concurrent_batches)
    app = create_app(
        runtime,
        info,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        batching=batching,
    )

    def ready(host: str, port: int) -> None:
        state = {"state": "ready", "load_s": round(load_s, 3), "pid": os.getpid()}
        if startup is not None:
            startup["times"]["listening"] = time.time()
            state.update(startup)
        _write_status(args.status_file, {**state, "host": host, "port": port})
        print(f"replica {args.replica_id} ready on http://{host}:{port}", flush=True)

    def out_of_memory(message: str) -> None:
        """Record it for the backend (exit reason `oom`), then stop gracefully, once."""
        if app.serving.on_out_of_memory is None:
            return
        app.serving.on_out_of_memory = None
        _write_status(args.status_file, {"state": "out_of_memory", "error": message})
        print(f"replica {args.replica_id}: {message}; stopping", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    app.serving.on_out_of_memory = out_of_memory
    try:
        started = serve(app, host=args.host, port=args.port or 0, fd=args.fd, on_ready=ready)
    finally:
        app.close()
    return 0 if started else 1


def _write_status(path: Path | None, state: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)
