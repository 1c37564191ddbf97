"""Controller failover (issue 16): two `podium server --roles controller,api,gateway`
processes on one fresh PostgreSQL database and one shared home; one leads, the other stands
by. SIGKILL the leader: the standby takes the lead (the lease's epoch rises by exactly
one), adopts the two replicas the first one started (same PIDs, still two, none started
again) and there is never more than one leader."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium.core.phases import EventKind
from tests.support.db import postgres_url
from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess, free_port, wait_running, wait_until

__all__ = ["postgres_url"]

pytestmark = pytest.mark.postgres
ROLES = ("server", "--roles", "controller,api,gateway")


def _gauges(server: ServerProcess) -> dict[str, float]:
    """podium_controller_leader and _epoch from the process's /metrics."""
    text = httpx.get(server.url + "/metrics", headers=server.headers, timeout=5).text
    wanted = {"podium_controller_leader", "podium_controller_epoch"}
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in wanted
    }


def _lease_epoch(url: str) -> int:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT epoch FROM controller_lease WHERE id = 1").fetchone()
    assert row is not None
    return int(row[0])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    home = tmp_path / "home"
    env = {"PODIUM_DATABASE_URL": postgres_url}
    first = ServerProcess(home, free_port(), env, command=ROLES, log_name="first.log")
    second = ServerProcess(home, free_port(), env, command=ROLES, log_name="second.log")
    replicas: set[int] = set()
    try:
        yield first, second
    finally:
        for server in (first, second):
            if server.proc is not None and server.proc.poll() is None:
                try:
                    with server.client() as c:
                        replicas |= {r.pid for e in c.endpoints() for r in e.replicas if r.pid}
                except Exception:  # the server may be the one killed
                    pass
        second.stop()
        first.stop()
        # On PostgreSQL a stopping server leaves its replicas to the next leader: this
        # test's own replicas are stopped here, by their PIDs.
        for pid in replicas:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_leader_hands_the_lead_and_the_replicas_to_the_standby(
    tmp_path: Path, postgres_url: str, pair: tuple[ServerProcess, ServerProcess]
) -> None:
    first, second = pair
    first.start()
    assert _gauges(first) == {"podium_controller_leader": 1, "podium_controller_epoch": 1}
    second.start()  # after the first: it finds the admin token the first one made
    assert _gauges(second) == {"podium_controller_leader": 0, "podium_controller_epoch": 0}

    with first.client() as c:
        c.push_model(train_iris_skops(tmp_path / "iris"), "iris", framework="sklearn")
        c.deploy(
            {
                "name": "iris",
                "model": "iris",
                "framework": "sklearn",
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "iris")
        wait_until(lambda: len(c.endpoint("iris").replicas) == 2, 60, "two replicas")
        ep = c.endpoint("iris")
        pids = {r.pid for r in ep.replicas}
        starts = len([e for e in c.events("iris") if e.kind is EventKind.REPLICA_STARTING])
    assert len(pids) == 2 and None not in pids
    assert _lease_epoch(postgres_url) == 1
    assert _gauges(second)["podium_controller_leader"] == 0  # still one leader

    assert first.proc is not None
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)

    wait_until(lambda: _gauges(second)["podium_controller_leader"] == 1, 30, "the standby leads")
    assert _gauges(second)["podium_controller_epoch"] == 2
    assert _lease_epoch(postgres_url) == 2  # exactly one takeover

    with second.client() as c:
        wait_until(
            lambda: len([e for e in c.events("iris") if e.kind is EventKind.REPLICA_ADOPTED]) == 2,
            30,
            "both replicas adopted",
        )
        ep = wait_running(c, "iris", timeout=30)
        assert {r.pid for r in ep.replicas} == pids  # the same processes, still two
        assert ep.desired_replicas == 2
        assert all(_alive(pid) for pid in pids if pid)
        kinds = [e.kind for e in c.events("iris")]
        # Nothing was started again, stopped or lost by the takeover.
        assert len([k for k in kinds if k is EventKind.REPLICA_STARTING]) == starts
        assert EventKind.REPLICA_STOPPED not in kinds
    # The one leader kept the lead: the epoch did not move again.
    assert _lease_epoch(postgres_url) == 2
    assert _gauges(second) == {"podium_controller_leader": 1, "podium_controller_epoch": 2}
