"""Shared helpers for the benchmarks: processes, readiness, wrk, machine facts.

Benchmarks are run by `make bench`, never in CI, and make no timed assertions: they
measure and report.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYLOAD = str(ROOT / "bench" / "pyload.py")
_WARNED = False  # that wrk is missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, object]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def wait_ready(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    timeout: float = 120.0,
    proc: subprocess.Popen[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Poll `url` until it answers 200 (the process must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    headers = dict(headers or {})
    if body is not None:
        headers["content-type"] = "application/json"
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} was ready")
        try:
            req = urllib.request.Request(url, data=body, method=method, headers=headers)
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout:g} s")
        time.sleep(0.2)


class Processes:
    """Background processes with logs in one folder; `stop_all()` ends them (SIGTERM, then KILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class WrkResult:
    target: str
    connections: int
    duration_s: int
    requests_per_s: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def ensure_wrk() -> str:
    """wrk's path; without wrk, the Python load generator (`bench/pyload.py`, slower: its
    figures compare only with figures of the same run)."""
    path = shutil.which("wrk")
    if path:
        return path
    global _WARNED
    if not _WARNED:
        print("wrk is not installed (apt-get install -y wrk): using bench/pyload.py", flush=True)
        _WARNED = True
    return PYLOAD


def load_generator() -> str:
    """What drives the load in this run: "wrk" or "pyload (wrk not installed)"."""
    return "wrk" if shutil.which("wrk") else "pyload (wrk not installed)"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read a wrk latency from {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def post_script(
    body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
) -> Path:
    """A wrk lua script that POSTs `body` (written to a temporary file), with `headers`."""
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
    )
    for name, value in (headers or {}).items():
        lua += f'wrk.headers["{name}"] = "{value}"\n'

    fd, name = tempfile.mkstemp(prefix="podium-bench-", suffix=".lua")
    with os.fdopen(fd, "w") as f:
        f.write(lua)
    return Path(name)


def run_wrk(
    target: str,
    url: str,
    script: Path,
    *,
    connections: int,
    duration_s: int = 10,
    cpu: int | None = 0,
) -> WrkResult:
    """wrk with one thread (pinned to `cpu`) and `connections` keep-alive connections."""
    tool = ensure_wrk()
    if tool == PYLOAD:
        argv = [PYTHON, tool, f"-c{connections}", f"-d{duration_s}", "-s", str(script), url]
    else:
        argv = [tool, "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s"]
        argv += [str(script), url]
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out, target, connections, duration_s)


def parse_wrk(out: str, target: str, connections: int, duration_s: int) -> WrkResult:
    pct = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(\d+)%\s+(\S+)", out, re.M)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not rps or not total or "50" not in pct:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    return WrkResult(
        target=target,
        connections=connections,
        duration_s=duration_s,
        requests_per_s=float(rps.group(1)),
        p50_ms=pct["50"],
        p75_ms=pct.get("75", 0.0),
        p90_ms=pct.get("90", 0.0),
        p99_ms=pct.get("99", 0.0),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def write_results(name: str, doc: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def as_dict(result: WrkResult) -> dict[str, object]:
    return asdict(result)


PYTHON = sys.executable
