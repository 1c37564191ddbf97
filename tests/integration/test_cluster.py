"""Podium as several processes on one PostgreSQL database (issue 16): one API process, two
gateway processes and two controller candidates, sharing one home (one machine's node cache
and logs) as `docs/deploy.md` describes.

* The gateways route by the table the leader publishes (LISTEN/NOTIFY): an endpoint
  deployed through the API process answers through both gateways.
* A request held by a gateway whose process has no controller wakes the leader elsewhere
  (NOTIFY): an endpoint at zero comes up and answers.
* SIGKILL of the leading controller under load through both gateways: zero failed client
  requests (the replicas are the replicas' own processes; the gateways keep their table),
  the standby leads with the next epoch, and no sample ever saw two leaders.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.db import postgres_module_url
from tests.support.models import write_python_bundle
from tests.support.server import (
    LoadReport,
    ServerProcess,
    free_port,
    run_load,
    wait_running,
    wait_until,
)

__all__ = ["postgres_module_url"]

pytestmark = pytest.mark.postgres


class Cluster:
    def __init__(self, home: Path, database_url: str) -> None:
        env = {"PODIUM_DATABASE_URL": database_url}

        def process(roles: str, name: str) -> ServerProcess:
            command = ("server", "--roles", roles)
            return ServerProcess(home, free_port(), env, command=command, log_name=f"{name}.log")

        self.api = process("api", "api")
        self.leader = process("controller", "controller-1")
        self.standby = process("controller", "controller-2")
        self.gateways = [process("gateway", "gateway-1"), process("gateway", "gateway-2")]

    @property
    def processes(self) -> list[ServerProcess]:
        return [self.api, self.leader, self.standby, *self.gateways]


def _leads(server: ServerProcess) -> bool | None:
    """The process's `podium_controller_leader` gauge (None: it does not answer)."""
    try:
        text = httpx.get(server.url + "/metrics", headers=server.headers, timeout=2).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "podium_controller_leader":
                return sample.value == 1
    return None


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_module_url: str
) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"), postgres_module_url)
    replicas: set[int] = set()
    try:
        c.api.start()  # first: it makes the admin token the others read from the home
        c.leader.start()
        c.standby.start()
        for g in c.gateways:
            g.start()
        yield c
    finally:
        try:
            with c.api.client() as client:
                replicas |= {r.pid for e in client.endpoints() for r in e.replicas if r.pid}
        except Exception:  # the API may be what failed to start
            pass
        for p in reversed(c.processes):
            p.stop()
        # On PostgreSQL a stopping server leaves its replicas to the next leader: this
        # module's replicas are stopped here, by their PIDs.
        for pid in replicas:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def echo(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    bundle = write_python_bundle(tmp_path_factory.mktemp("echo") / "echo", sleep_s=0.002)
    with cluster.api.client() as c:
        c.push_model(bundle, "echo")
    return "echo"


def test_an_endpoint_deployed_through_the_api_answers_through_both_gateways(
    cluster: Cluster, echo: str
) -> None:
    with cluster.api.client() as c:
        c.deploy({"name": "both", "model": echo, "framework": "python"})
        wait_running(c, "both")
    for g in cluster.gateways:

        def answers(g: ServerProcess = g) -> bool:
            res = httpx.post(
                f"{g.url}/endpoints/both/", json={"inputs": "hi"}, headers=g.headers, timeout=10
            )
            return res.status_code == 200

        wait_until(answers, 30, f"an answer through {g.log_name}")


def test_a_request_held_by_a_gateway_wakes_the_leader_in_another_process(
    cluster: Cluster, echo: str
) -> None:
    spec = {"name": "sleepy", "model": echo, "framework": "python"}
    spec["scaling"] = {"min_replicas": 0, "max_replicas": 1}
    with cluster.api.client() as c:
        c.deploy(spec)
        wait_until(lambda: c.endpoint("sleepy").desired_replicas == 0, 30, "sleepy at zero")
    g = cluster.gateways[1]
    res = httpx.post(
        f"{g.url}/endpoints/sleepy/", json={"inputs": "wake"}, headers=g.headers, timeout=120
    )
    assert res.status_code == 200, res.text
    with cluster.api.client() as c:
        assert c.endpoint("sleepy").ready_replicas == 1


def test_sigkill_of_the_leader_under_load_fails_no_request(cluster: Cluster, echo: str) -> None:
    with cluster.api.client() as c:
        c.deploy(
            {
                "name": "steady",
                "model": echo,
                "framework": "python",
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "steady")
        wait_until(lambda: c.endpoint("steady").ready_replicas == 2, 60, "two ready replicas")
        pids = {r.pid for r in c.endpoint("steady").replicas}
    assert cluster.leader.proc is not None
    assert _leads(cluster.leader) and not _leads(cluster.standby)

    leaders_seen: list[int] = []
    sampling = threading.Event()

    def sample_leaders() -> None:
        while not sampling.is_set():
            leaders_seen.append(sum(bool(_leads(p)) for p in (cluster.leader, cluster.standby)))
            time.sleep(0.05)

    def kill_leader(started: float) -> None:
        time.sleep(max(0.0, started + 3 - time.monotonic()))
        assert cluster.leader.proc is not None
        cluster.leader.proc.send_signal(signal.SIGKILL)

    sampler = threading.Thread(target=sample_leaders, daemon=True)
    sampler.start()
    other = LoadReport()

    def load_other() -> None:
        g = cluster.gateways[1]
        other.__dict__.update(
            run_load(
                f"{g.url}/endpoints/steady/",
                {"inputs": "x"},
                seconds=12,
                clients=4,
                headers=g.headers,
            ).__dict__
        )

    second = threading.Thread(target=load_other)
    second.start()
    g = cluster.gateways[0]
    first = run_load(
        f"{g.url}/endpoints/steady/",
        {"inputs": "x"},
        seconds=12,
        clients=4,
        during=kill_leader,
        headers=g.headers,
    )
    second.join(60)
    wait_until(lambda: bool(_leads(cluster.standby)), 30, "the standby leads")
    sampling.set()
    sampler.join(10)

    assert first.failures == [] and other.failures == [], (first.failures[:3], other.failures[:3])
    assert first.ok > 50 and other.ok > 50
    assert max(leaders_seen) <= 1, "two controllers led at once"
    assert cluster.leader.proc.wait(10) == -signal.SIGKILL
    # The replicas were never restarted: the standby adopted them.
    with cluster.api.client() as c:
        wait_until(lambda: c.endpoint("steady").ready_replicas == 2, 30, "two ready replicas")
        assert {r.pid for r in c.endpoint("steady").replicas} == pids
    assert all(psutil.pid_exists(pid) for pid in pids if pid)
