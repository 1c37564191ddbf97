"""Controller failover: from SIGKILL of the leading controller to the standby's first pass.

    python bench/failover.py                 # 5 rounds; needs PostgreSQL
    python bench/failover.py --rounds 3 --replicas 2

Two `podium server --roles controller,api,gateway` processes share a fresh PostgreSQL
database (created on the server at $PODIUM_BENCH_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/test, dropped at the end) and one home; an endpoint
runs `--replicas` replicas of a python model. Each round: a fresh standby is started and
waits (its `podium_controller_leader` is 0), the leader is SIGKILLed, and the standby's
`/metrics` is read every 10 ms until `podium_controller_passes_total{outcome="ok"}` is
above zero: a standby never runs a pass, so that is its first pass as leader (adoption of
the replicas included). The time from the kill to that scrape is the round's figure (the
10 ms polling is its resolution). The standby leads the next round. Results:
bench/results/failover.json (each round, the median), and one line per round.

It measures and reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from common import PYTHON, Processes, free_port, machine, wait_ready, write_results
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from podium.client import PodiumClient

ADMIN_URL = os.environ.get("PODIUM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROLES = "controller,api,gateway"
POLL_S = 0.01
MODEL_PY = """\
class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        return inputs
"""


def _metrics(url: str, headers: dict[str, str]) -> dict[str, float]:
    text = httpx.get(url + "/metrics", headers=headers, timeout=2).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("podium_controller_leader", "podium_controller_epoch"):
                out[s.name] = s.value
            elif s.name == "podium_controller_passes_total" and s.labels["outcome"] == "ok":
                out["passes_ok"] = s.value
    return out


class Fleet:
    """The server processes of the run, on one database and one home."""

    def __init__(self, work: Path, database_url: str) -> None:
        self.home = work / "home"
        self.procs = Processes(work)
        self.env = {
            "PODIUM_HOME": str(self.home),
            "PODIUM_DATABASE_URL": database_url,
            "HF_HUB_OFFLINE": "1",
        }
        self.count = 0

    def start(self) -> tuple[subprocess.Popen[bytes], str]:
        self.count += 1
        port = free_port()
        argv = [PYTHON, "-m", "podium", "server", "--roles", ROLES, "--port", str(port)]
        proc = self.procs.start(f"server{self.count}", argv, self.env)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/api/v1/health", proc=proc)
        return proc, url

    def headers(self) -> dict[str, str]:
        token = (self.home / "credentials").read_text().strip()
        return {"authorization": f"Bearer {token}"}


def run(work: Path, database_url: str, rounds: int, replicas: int) -> dict[str, Any]:
    fleet = Fleet(work, database_url)
    try:
        leader, leader_url = fleet.start()
        headers = fleet.headers()
        bundle = work / "echo"
        bundle.mkdir()
        (bundle / "model.py").write_text(MODEL_PY)
        with PodiumClient(leader_url, token=headers["authorization"][7:], timeout=120) as c:
            c.push_model(bundle, "echo", framework="python")
            scaling = {"min_replicas": replicas, "max_replicas": replicas}
            c.deploy({"name": "echo", "model": "echo", "framework": "python", "scaling": scaling})
            c.wait_for("echo", {"running"}, timeout=120)
        results = []
        for n in range(rounds):
            standby, standby_url = fleet.start()
            before = _metrics(standby_url, headers)
            assert before.get("podium_controller_leader") == 0, before
            killed = time.monotonic()
            leader.send_signal(signal.SIGKILL)
            while True:
                now = _metrics(standby_url, headers)
                if now.get("passes_ok", 0) > 0:
                    took = time.monotonic() - killed
                    break
                if time.monotonic() - killed > 60:
                    raise RuntimeError("the standby did not lead within 60 s")
                time.sleep(POLL_S)
            leader.wait(10)
            with PodiumClient(standby_url, token=headers["authorization"][7:], timeout=60) as c:
                c.wait_for("echo", {"running"}, timeout=60)
                pids = sorted(r.pid or 0 for r in c.endpoint("echo").replicas)
            row = {
                "round": n + 1,
                "seconds": round(took, 3),
                "epoch": now["podium_controller_epoch"],
            }
            row["replica_pids"] = pids
            print(
                f"round {n + 1}: first pass as leader {took * 1000:.0f} ms after SIGKILL "
                f"(epoch {int(now['podium_controller_epoch'])}, replicas {pids})"
            )
            results.append(row)
            leader, leader_url = standby, standby_url
        seconds = [float(r["seconds"]) for r in results]
        return {
            "rounds": results,
            "median_s": round(statistics.median(seconds), 3),
            "max_s": round(max(seconds), 3),
            "replicas": replicas,
            "poll_s": POLL_S,
        }
    finally:
        # On PostgreSQL a stopping server leaves its replicas to the next leader: the last
        # leader deletes the endpoint (its replicas stopped) before the servers stop.
        try:
            with PodiumClient(leader_url, token=fleet.headers()["authorization"][7:]) as c:
                c.delete("echo")
                deadline = time.monotonic() + 60
                while any(e.name == "echo" for e in c.endpoints()):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the endpoint was not deleted within 60 s")
                    time.sleep(0.2)
        except Exception as e:  # a failed run: say so, still stop the servers
            print(f"cleanup: {e}", file=sys.stderr)
        fleet.procs.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    name = f"podium_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory(prefix="podium-failover-") as tmp:
            doc = run(Path(tmp), url, args.rounds, args.replicas)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    doc = {"benchmark": "failover", "machine": machine(), **doc}
    path = write_results("failover", doc)
    print(f"median {doc['median_s'] * 1000:.0f} ms over {args.rounds} rounds -> {path}")


if __name__ == "__main__":
    main()
