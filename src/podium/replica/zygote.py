"""`python -m podium.replica.zygote --family F --fd N`: a pre-started factory of replicas.

A zygote imports the heavy modules of one runtime family once (`FAMILIES`: numpy for
`python`; scikit-learn + skops for `sklearn`; torch + transformers + sentence-transformers
for `transformers`), then forks a child per replica. The child inherits the imported
modules, so it only loads its model: `podium.replica.main.main(argv, start_mode="fork")`.

The backend talks to the zygote over one connected Unix socket (a socketpair end passed as
file descriptor N): length-prefixed JSON messages, with file descriptors attached to a
`start` request through SCM_RIGHTS.

    zygote → backend  {"event": "ready", "family", "pid", "import_s", "threads", "failed"}
    backend → zygote  {"op": "start", "argv": [...], "env": {...}}  + fds [listen, log]
                      → {"ok": true, "pid": N}
    backend → zygote  {"op": "exit_code", "pid": N} → {"ok": true, "code": C | null}
    backend → zygote  {"op": "ping"} → {"ok": true}

Fork safety: the zygote is single-threaded. It imports with every thread pool limited to
one thread (OpenBLAS, OpenMP, MKL, torch), so no thread exists when it forks; it reports
its thread count and the backend refuses to fork from a zygote that has more than one.
The child raises its own thread limits after loading (threadpoolctl, the runtime's
`torch.set_num_threads`).

A child starts a new session (so the backend signals its process group, and the child
survives the zygote), restores default signal handlers, sends stdout/stderr to the
replica's log file, closes every inherited descriptor but the listening socket (never the
zygote's socket), takes the environment the backend sent, reseeds numpy's global random
state, and never returns into the zygote's loop (`os._exit`).

The zygote reaps its children and keeps their exit codes for the backend. It exits when
the backend's end of the socket closes (the server stopped or died); its children live on
in their own sessions, and the next server adopts them.

Only the standard library is imported at module level (the backend imports the framing
helpers from here).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

# What every replica imports, whatever its runtime (the replica's own stack).
COMMON_MODULES = (
    "podium.runtimes.registry",
    "podium.replica.app",
    "podium.replica.uvicorn_runner",
    "podium.replica.main",
    "uvicorn",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.off",
    "threadpoolctl",
    "ctypes",
)

# Runtime family -> the modules its zygote imports before forking. Names that cannot be
# imported are skipped (and reported); the runtime then imports what it needs after fork.
FAMILIES: dict[str, tuple[str, ...]] = {
    "onnx": ("numpy", "onnxruntime", "podium.runtimes.onnx"),
    "python": ("numpy", "podium.runtimes.python"),
    "sklearn": (
        "numpy",
        "scipy",
        "sklearn",
        "sklearn.base",
        "sklearn.linear_model",
        "sklearn.ensemble",
        "sklearn.tree",
        "sklearn.pipeline",
        "sklearn.preprocessing",
        "skops.io",
        "podium.runtimes.sklearn",
    ),
    "transformers": (
        "numpy",
        "torch",
        "safetensors",
        "safetensors.torch",
        "tokenizers",
        "transformers",
        "transformers.models.auto.modeling_auto",
        "transformers.models.auto.tokenization_auto",
        "transformers.models.bert.modeling_bert",
        "transformers.models.bert.tokenization_bert",
        "transformers.models.bert.tokenization_bert_fast",
        "transformers.pipelines",
        "sentence_transformers",
        "sentence_transformers.models",
        "podium.runtimes.transformers",
        "podium.runtimes.transformers.embeddings",
        "podium.runtimes.transformers.encoders",
        "podium.runtimes.transformers.generation",
    ),
}

HEADER = struct.Struct("!I")
MAX_MESSAGE = 16 * 1024 * 1024
MAX_FDS = 8
KEPT_EXIT_CODES = 4096
REAP_EVERY_S = 1.0


# ---------------------------------------------------------------------- framing


class ChannelClosed(ConnectionError):
    """The other end closed the socket."""


def send_message(sock: socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    """One length-prefixed JSON message; `fds` travel with its first bytes (SCM_RIGHTS)."""
    body = json.dumps(message).encode("utf-8")
    data = HEADER.pack(len(body)) + body
    sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
    if sent < len(data):
        sock.sendall(data[sent:])


def recv_message(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The next message and the descriptors that came with it (blocking, per the socket's
    timeout). Raises ChannelClosed at end of stream."""
    data, fds, _, _ = socket.recv_fds(sock, 65536, MAX_FDS)
    if not data:
        for fd in fds:
            os.close(fd)
        raise ChannelClosed("the other end closed the channel")
    buf = bytearray(data)
    while len(buf) < HEADER.size:
        buf += _recv_some(sock)
    (size,) = HEADER.unpack_from(buf)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes is too large")
    while len(buf) < HEADER.size + size:
        buf += _recv_some(sock)
    if len(buf) > HEADER.size + size:
        raise ValueError("unexpected bytes after a message (one request at a time)")
    message = json.loads(bytes(buf[HEADER.size :]))
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message, list(fds)


def _recv_some(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ChannelClosed("the other end closed the channel mid-message")
    return chunk


# ---------------------------------------------------------------------- imports


def preload(family: str) -> dict[str, str]:
    """Import the family's modules; returns {module: error} for those that failed."""
    failed: dict[str, str] = {}
    for name in (*FAMILIES.get(family, ()), *COMMON_MODULES):
        try:
            importlib.import_module(name)
        except Exception as e:  # ImportError, or a library failing while it initialises
            failed[name] = f"{type(e).__name__}: {e}"
    return failed


def thread_count() -> int:
    """Threads of this process (1 on a platform without /proc: nothing to count)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


# ---------------------------------------------------------------------- zygote


class Zygote:
    """The zygote's loop: answer requests on `sock`, fork children, reap them."""

    def __init__(self, family: str, sock: socket.socket) -> None:
        self.family = family
        self.sock = sock
        self.exit_codes: OrderedDict[int, int] = OrderedDict()
        self.children: set[int] = set()

    def serve(self) -> int:
        while True:
            readable, _, _ = select.select([self.sock], [], [], REAP_EVERY_S)
            self.reap()
            if not readable:
                continue
            try:
                message, fds = recv_message(self.sock)
            except ChannelClosed:
                return 0  # the server is gone; our children live on in their own sessions
            reply = self.handle(message, fds)
            send_message(self.sock, reply)

    def handle(self, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        op = message.get("op")
        try:
            if op == "start":
                return {"ok": True, "pid": self.fork(message, fds)}
            if op == "exit_code":
                return {"ok": True, **self.exit_code(int(message["pid"]))}
            if op == "ping":
                return {"ok": True, "pid": os.getpid(), "threads": thread_count()}
            return {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as e:
            return {"ok": False, "error": f"{type(e).__name__}: {e}"}
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def fork(self, message: dict[str, Any], fds: list[int]) -> int:
        if len(fds) != 2:
            raise ValueError(f"a start request carries 2 descriptors (listen, log), not {len(fds)}")
        threads = thread_count()
        if threads > 1:
            raise RuntimeError(f"the zygote has {threads} threads; forking it is not safe")
        argv = [str(a) for a in message["argv"]]
        env = {str(k): str(v) for k, v in dict(message["env"]).items()}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:
            _child(self.sock, argv, env, fds[0], fds[1])  # never returns
        self.children.add(pid)
        return pid

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.exit_codes[pid] = os.waitstatus_to_exitcode(status)
            while len(self.exit_codes) > KEPT_EXIT_CODES:
                self.exit_codes.popitem(last=False)

    def exit_code(self, pid: int) -> dict[str, Any]:
        self.reap()
        if pid in self.exit_codes:
            return {"exited": True, "code": self.exit_codes.pop(pid)}
        return {"exited": pid not in self.children, "code": None}


def _child(
    zygote_sock: socket.socket, argv: list[str], env: dict[str, str], listen_fd: int, log_fd: int
) -> None:
    """The forked replica: become a fresh process, run the replica, never return."""
    code = 1
    try:
        os.setsid()
        _reset_signals()
        zygote_sock.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        keep = 10 if listen_fd < 10 else listen_fd + 1
        os.dup2(listen_fd, keep)  # one known number above the standard ones
        os.closerange(3, keep)
        os.closerange(keep + 1, _max_fd())
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
        os.environ.clear()
        os.environ.update(env)
        argv = _with_fd(argv, keep)
        sys.argv = ["python -m podium.replica", *argv]
        _set_process_name(b"podium-replica")
        _reseed()
        from podium.replica.main import main

        code = main(argv, start_mode="fork", started_at=time.time())
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            import atexit

            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def _reset_signals() -> None:
    """Signal dispositions and mask of a freshly started Python process."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for ignored in (signal.SIGPIPE, signal.SIGXFSZ):  # what the interpreter sets at start
        signal.signal(ignored, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def _with_fd(argv: list[str], fd: int) -> list[str]:
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--fd":
            out[i + 1] = str(fd)
    return out


def _set_process_name(name: bytes) -> None:
    """Best effort: `ps -o comm` and psutil's name() show `podium-replica`."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)  # PR_SET_NAME


def _reseed() -> None:
    """Children must not share the zygote's random state (Python's `random` reseeds itself
    after fork; numpy's global generator does not)."""
    np = sys.modules.get("numpy")
    if np is not None:
        with contextlib.suppress(Exception):
            np.random.seed()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m podium.replica.zygote")
    p.add_argument("--family", required=True, choices=sorted(FAMILIES))
    p.add_argument("--fd", required=True, type=int, help="connected Unix socket to the backend")
    args = p.parse_args(argv)
    for name in THREAD_ENV:  # before numpy / torch load: no thread pools in the zygote
        os.environ[name] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the server's
    sock = socket.socket(fileno=args.fd)
    started = time.monotonic()
    failed = preload(args.family)
    _reseed()  # the first reseed initialises numpy's lazily built parts: do it once, here
    gc.collect()
    gc.freeze()  # children's collections skip the zygote's objects: fewer copy-on-write pages
    if "torch" in sys.modules:
        with contextlib.suppress(Exception):
            torch: Any = sys.modules["torch"]
            torch.set_num_threads(1)
    ready = {
        "event": "ready",
        "family": args.family,
        "pid": os.getpid(),
        "import_s": round(time.monotonic() - started, 3),
        "threads": thread_count(),
        "failed": failed,
    }
    print(f"zygote {args.family}: {json.dumps(ready)}", flush=True)
    try:
        send_message(sock, ready)
        return Zygote(args.family, sock).serve()
    except (ChannelClosed, BrokenPipeError, ConnectionResetError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
