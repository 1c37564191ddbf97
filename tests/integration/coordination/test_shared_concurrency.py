"""Two gateways (each with its own `PgRoutingSource` and load reporter, as two server
processes have) share one real replica process whose model is slow: the replica never runs
more than its `max_concurrency` at once.

With shares (each gateway installs 4 // 2 = 2) the gateways hold the surplus themselves:
the replica never even queues. Without shares (each gateway believes it alone may send 4)
the replica's own limiter is the hard cap: it runs 4 and queues the rest."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial

import httpx
import pytest

from podium.coordination.loads import GatewayReporter
from podium.coordination.routing_pg import PgRoutingSource
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, ReplicaRoute
from podium.core.settings import GatewaySettings
from podium.gateway.app import Gateway
from podium.store import Database
from tests.support.inproc import served
from tests.support.models import write_python_bundle
from tests.unit.coordination.helpers import lead, wait_for

pytestmark = pytest.mark.postgres

MAX_CONCURRENCY = 4
REQUESTS_PER_GATEWAY = 8
SLEEP_S = 0.3  # each prediction


@dataclass
class ReplicaProcess:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaProcess]:
    """`python -m podium.replica` serving a model that sleeps, at most 4 at once (one per
    test: its high-water marks count from its start)."""
    tmp = tmp_path_factory.mktemp("slow-replica")
    bundle = write_python_bundle(tmp / "bundle", sleep_s=SLEEP_S)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cmd = [
        sys.executable, "-m", "podium.replica",
        "--replica-id", "slow-r1", "--endpoint", "slow", "--revision", "1",
        "--runtime", "python", "--model-path", str(bundle),
        "--status-file", str(tmp / "status.json"), "--port", str(port),
        "--max-concurrency", str(MAX_CONCURRENCY), "--max-queue", "64",
    ]  # fmt: skip
    with (tmp / "replica.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()  # its ready line, or EOF if it exited
        assert "ready on" in line, (tmp / "replica.log").read_text()
        yield ReplicaProcess(proc, port)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass
class Peaks:
    """The replica's own high-water marks of running and queued predictions, and each
    gateway's largest count of outstanding requests (polled while loaded)."""

    in_flight: int = 0
    queued: int = 0
    samples: int = 0
    per_gateway: list[int] = field(default_factory=lambda: [0, 0])


def poll(gateways: list[Gateway], peaks: Peaks, stop: threading.Event) -> None:
    while not stop.wait(0.005):
        peaks.samples += 1
        for i, g in enumerate(gateways):
            peaks.per_gateway[i] = max(peaks.per_gateway[i], g.outstanding("slow-r1"))


def high_water(replica: ReplicaProcess, peaks: Peaks) -> None:
    """The replica's own marks (`/podium/info`): exact, whatever a poller would miss."""
    load = httpx.get(f"{replica.url}/podium/info", timeout=10).json()["load"]
    peaks.in_flight, peaks.queued = int(load["max_in_flight"]), int(load["max_queued"])


def shared_as(source: PgRoutingSource, want: int) -> bool:
    route = source.table.endpoints.get("slow")
    return route is not None and route.max_concurrency == want


def load_both(replica: ReplicaProcess, pg: Database, *, shared: bool) -> Peaks:
    """Serve two gateways following one leader's table; send 8 requests through each at
    once; return what the replica and the gateways counted meanwhile."""
    url = pg.engine.url.render_as_string(hide_password=False)
    with ExitStack() as stack:
        leader = PgRoutingSource(Database(url), fence=lead(pg, 1))
        stack.callback(leader.close)
        gateways: list[Gateway] = []
        sources: list[PgRoutingSource] = []
        bases: list[str] = []
        for n in (1, 2):
            gid = f"g{n}"
            source = PgRoutingSource(
                Database(url), gateway_id=gid if shared else None, refresh_s=0.2
            )
            stack.callback(source.close)
            assert source.start()
            gateway = Gateway(source, GatewaySettings())
            host, port = stack.enter_context(served(gateway))
            reporter = GatewayReporter(Database(url), gid, gateway, report_s=0.1)
            reporter.start()
            stack.callback(reporter.close)
            gateways.append(gateway)
            sources.append(source)
            bases.append(f"http://{host}:{port}")
        leader.publish(
            {
                "slow": EndpointRoute(
                    name="slow",
                    status=EndpointStatus.RUNNING,
                    replicas=(ReplicaRoute("slow-r1", "127.0.0.1", replica.port, 1),),
                    max_concurrency=MAX_CONCURRENCY,
                )
            }
        )
        want = MAX_CONCURRENCY // 2 if shared else MAX_CONCURRENCY
        for s in sources:
            wait_for(partial(shared_as, s, want), f"each gateway's share of {want}")
        peaks, stop = Peaks(), threading.Event()
        poller = threading.Thread(target=poll, args=(gateways, peaks, stop), daemon=True)
        poller.start()
        try:

            def call(base: str) -> int:
                r = httpx.post(f"{base}/endpoints/slow/", json={"inputs": "x"}, timeout=60)
                return r.status_code

            with ThreadPoolExecutor(2 * REQUESTS_PER_GATEWAY) as pool:
                codes = list(
                    pool.map(call, [b for b in bases for _ in range(REQUESTS_PER_GATEWAY)])
                )
        finally:
            stop.set()
            poller.join(30)
        assert codes == [200] * (2 * REQUESTS_PER_GATEWAY)
        assert peaks.samples > 0
        high_water(replica, peaks)
        return peaks


def test_shares_keep_two_gateways_within_the_replicas_max_concurrency(
    replica: ReplicaProcess, pg: Database
) -> None:
    peaks = load_both(replica, pg, shared=True)
    assert peaks.in_flight <= MAX_CONCURRENCY
    assert peaks.queued == 0  # the gateways held the surplus: the replica never queued
    assert max(peaks.per_gateway) <= MAX_CONCURRENCY // 2
    assert peaks.in_flight >= 2  # it did run requests side by side


def test_the_replicas_limiter_is_the_hard_cap_without_shares(
    replica: ReplicaProcess, pg: Database
) -> None:
    peaks = load_both(replica, pg, shared=False)
    assert peaks.in_flight <= MAX_CONCURRENCY  # each gateway sent up to 4: 8 arrived...
    assert peaks.queued > 0  # ...and the replica queued what it would not run
    assert max(peaks.per_gateway) <= MAX_CONCURRENCY
