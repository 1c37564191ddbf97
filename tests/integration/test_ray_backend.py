"""The Ray backend against a real multi-node Ray cluster on this machine.

One cluster for the module: a head with no CPUs (so replicas land on workers only) and two
worker nodes, each its own raylet on loopback with 2 logical CPUs and a 100 MB object
store, no dashboard. One real `podium up` with `PODIUM_BACKEND=ray` joins it. Models are
pushed to the server and fetched by each node over the API's model files route into the
node's own cache (`PODIUM_RAY_NODE_DIR/<node>/cache`), checked by digest there.

Tests run in file order and each deletes its endpoint, so the next has the workers' CPUs;
the node-loss test comes last (it SIGKILLs a worker). Every wait is on a condition with a
generous deadline; nothing asserts on a duration.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from tests.support.hf_cache import add_to_hf_cache
from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess, run_load, running_server, wait_running, wait_until

# Not `importorskip`: `ray` must first be imported after RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
# is set (`RayCluster`), which Ray reads once, at import.
pytestmark = pytest.mark.skipif(find_spec("ray") is None, reason="the `ray` extra is not installed")

IRIS_ROW = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}
MB = 2**20
NODE: dict[str, Any] = {
    "num_cpus": 2,
    "object_store_memory": 100 * MB,
    "node_ip_address": "127.0.0.1",
}


class RayCluster:
    """A head and two workers (`ray.cluster_utils.Cluster`), and this test's own driver to
    ask actors where they run."""

    def __init__(self, node_dir: Path, node_env: dict[str, str]) -> None:
        # Keep 127.0.0.1 as it is (see `ray_calls`); read by Ray once, when imported.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        # The nodes inherit this process's environment when they start: their own settings
        # (`PODIUM_RAY_NODE_DIR`, a Hub cache); given back once they run.
        saved = {k: os.environ.get(k) for k in node_env}
        os.environ.update(node_env)
        try:
            self._start(node_dir)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _start(self, node_dir: Path) -> None:
        import ray
        from ray.cluster_utils import Cluster

        self.ray = ray
        head = {**NODE, "num_cpus": 0, "include_dashboard": False}
        self.cluster = Cluster(initialize_head=True, head_node_args=head)
        self.workers = [self.cluster.add_node(**NODE) for _ in range(2)]
        self.cluster.wait_for_nodes()
        ray.init(address=self.cluster.address, namespace="podium", log_to_driver=False)
        self.node_dir = node_dir

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def node_of(self, replica_id: str) -> str:
        """The Ray node id the replica's actor runs on."""
        actor = self.ray.get_actor(replica_id, namespace="podium")
        where: Any = self.ray.get(actor.where.remote(), timeout=30)
        return str(where["node"])

    def worker_node_id(self, index: int) -> str:
        return str(self.workers[index].node_id)

    def kill_worker(self, index: int) -> None:
        """SIGKILL every process of one worker node (its raylet and what it runs)."""
        self.cluster.remove_node(self.workers[index], allow_graceful=False)

    def shutdown(self) -> None:
        head = self.cluster.head_node
        assert head is not None
        session = Path(head.get_session_dir_path())
        self.ray.shutdown()
        self.cluster.shutdown()
        shutil.rmtree(session, ignore_errors=True)  # the nodes' logs under /tmp/ray
        latest = session.parent / "session_latest"
        if latest.is_symlink() and Path(os.readlink(latest)) == session:
            latest.unlink()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    hub = tmp_path_factory.mktemp("hf-home") / "hub"  # the nodes' Hub cache, offline
    add_to_hf_cache(hub, "acme/iris", train_iris_skops(tmp_path_factory.mktemp("hub-iris")))
    node_dir = tmp_path_factory.mktemp("ray-nodes")
    env = {"PODIUM_RAY_NODE_DIR": str(node_dir), "HF_HOME": str(hub.parent), "HF_HUB_OFFLINE": "1"}
    c = RayCluster(node_dir, env)
    try:
        yield c
    finally:
        c.shutdown()


@pytest.fixture(scope="module")
def server(
    cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("models")
    home = tmp_path_factory.mktemp("podium")
    env = {"PODIUM_BACKEND": "ray", "PODIUM_RAY_ADDRESS": cluster.address}
    with running_server(home, **env) as s, s.client() as c:
        c.push_model(train_iris_skops(tmp / "iris"), "iris")
        c.push_model(train_iris_skops(tmp / "iris2"), "iris")  # same bytes: a duplicate
        yield s


def ready(server: ServerProcess, name: str) -> list[Any]:
    with server.client() as c:
        return [r for r in c.endpoint(name).replicas if r.state is ReplicaState.READY]


def predict(server: ServerProcess, name: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/endpoints/{name}/", json=IRIS_ROW, headers=server.headers, timeout=60
    )


def delete(server: ServerProcess, name: str) -> None:
    with server.client() as c:
        c.delete(name)
    wait_until(
        lambda: (
            httpx.get(f"{server.url}/api/v1/endpoints/{name}", headers=server.headers).status_code
            == 404
        ),
        120,
        f"{name} deleted",
    )


def test_two_replicas_land_on_two_nodes_and_serve_through_the_gateway(
    cluster: RayCluster, server: ServerProcess
) -> None:
    with server.client() as c:
        c.deploy(
            {
                "name": "spread",
                "model": "iris",
                "framework": "sklearn",
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "spread", timeout=180)
    wait_until(lambda: len(ready(server, "spread")) == 2, 120, "2 ready replicas")
    replicas = ready(server, "spread")
    nodes = {cluster.node_of(r.replica_id) for r in replicas}
    assert nodes == {cluster.worker_node_id(0), cluster.worker_node_id(1)}

    served: set[str] = set()
    for _ in range(20):
        r = predict(server, "spread")
        assert r.status_code == 200, r.text
        assert r.json() == [0]
        served.add(r.headers["x-podium-replica"])
    assert served == {r.replica_id for r in replicas}

    # Each node fetched the model into its own cache, under its digest.
    with server.client() as c:
        digest = c.model("iris").versions[-1].sha256
    cached = [p.name for p in cluster.node_dir.glob("*/cache/models/*") if p.is_dir()]
    assert cached == [digest, digest]

    # Logs and start phases come back through the backend.
    rid = replicas[0].replica_id
    logs = httpx.get(
        f"{server.url}/api/v1/endpoints/spread/logs",
        params={"replica": rid},
        headers=server.headers,
        timeout=30,
    )
    assert logs.status_code == 200, logs.text
    assert f"replica {rid} ready on http://127.0.0.1:" in logs.text
    with server.client() as c:
        readies = [e for e in c.events("spread") if e.kind is EventKind.REPLICA_READY]
    assert len(readies) == 2
    for event in readies:  # the start's phases, from the status file on the replica's node
        assert event.data["start_mode"] == "spawn"
        assert {"waiting", "spawn", "import", "load"} <= set(event.data["phases"])
    delete(server, "spread")


def test_scale_from_zero_on_ray(cluster: RayCluster, server: ServerProcess) -> None:
    with server.client() as c:
        c.deploy(
            {
                "name": "napper",
                "model": "iris",
                "framework": "sklearn",
                "scaling": {"min_replicas": 0, "max_replicas": 1},
            }
        )
        c.wait_for("napper", {EndpointStatus.SCALED_TO_ZERO}, timeout=120)  # starts at 0
    wait_until(lambda: ready(server, "napper") == [], 120, "no replica")

    r = predict(server, "napper")  # held while Ray places a replica
    assert r.status_code == 200, r.text
    assert r.json() == [0]
    [replica] = ready(server, "napper")
    assert cluster.node_of(replica.replica_id) in {
        cluster.worker_node_id(0),
        cluster.worker_node_id(1),
    }
    delete(server, "napper")


def test_rolling_update_on_ray_fails_no_request(cluster: RayCluster, server: ServerProcess) -> None:
    with server.client() as c:
        c.deploy(
            {
                "name": "roll",
                "model": "iris:1",
                "framework": "sklearn",
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "roll", timeout=180)
        first = {r.replica_id for r in ready(server, "roll")}

    def update(started: float) -> None:
        time.sleep(max(0.0, started + 3 - time.monotonic()))
        with server.client() as c:
            c.update("roll", {"env": {"ROLLED": "1"}})

    report = run_load(
        f"{server.url}/endpoints/roll/",
        IRIS_ROW,
        seconds=15,
        clients=4,
        during=update,
        headers=server.headers,
    )
    assert report.failures == [], report.failures[:5]
    assert report.ok > 0
    with server.client() as c:
        wait_until(
            lambda: (
                {r.revision for r in c.endpoint("roll").replicas} == {2}
                and len(ready(server, "roll")) == 2
            ),
            180,
            "2 replicas of revision 2",
        )
    assert first.isdisjoint(r.replica_id for r in ready(server, "roll"))
    delete(server, "roll")


def test_an_hf_model_is_fetched_on_the_node_that_runs_it(
    cluster: RayCluster, server: ServerProcess
) -> None:
    with server.client() as c:
        c.deploy({"name": "hub", "model": "hf://acme/iris", "framework": "sklearn"})
        wait_running(c, "hub", timeout=180)
    r = predict(server, "hub")
    assert r.status_code == 200, r.text
    assert r.json() == [0]
    delete(server, "hub")


def test_a_server_killed_and_restarted_adopts_its_replicas_on_ray(
    cluster: RayCluster, server: ServerProcess
) -> None:
    with server.client() as c:
        c.deploy(
            {
                "name": "keeper",
                "model": "iris",
                "framework": "sklearn",
                "scaling": {"min_replicas": 1, "max_replicas": 1},
            }
        )
        wait_running(c, "keeper", timeout=180)
    [before] = ready(server, "keeper")
    server.stop(signal.SIGKILL)  # the actors are detached: they outlive the server
    server.start()
    wait_until(
        lambda: [r.replica_id for r in ready(server, "keeper")] == [before.replica_id],
        120,
        "the replica adopted",
    )
    r = predict(server, "keeper")
    assert r.status_code == 200, r.text
    assert r.headers["x-podium-replica"] == before.replica_id
    delete(server, "keeper")


def test_a_worker_node_sigkilled_under_load_fails_no_request_and_is_replaced(
    cluster: RayCluster, server: ServerProcess
) -> None:
    with server.client() as c:
        c.deploy(
            {
                "name": "survivor",
                "model": "iris",
                "framework": "sklearn",
                "scaling": {"min_replicas": 2, "max_replicas": 2},
            }
        )
        wait_running(c, "survivor", timeout=180)
    wait_until(lambda: len(ready(server, "survivor")) == 2, 120, "2 ready replicas")
    on_node = {cluster.node_of(r.replica_id): r.replica_id for r in ready(server, "survivor")}
    doomed_node = cluster.worker_node_id(0)
    victim = on_node[doomed_node]

    def kill_node(started: float) -> None:
        time.sleep(max(0.0, started + 4 - time.monotonic()))
        cluster.kill_worker(0)

    report = run_load(
        f"{server.url}/endpoints/survivor/",
        IRIS_ROW,
        seconds=15,
        clients=4,
        during=kill_node,
        headers=server.headers,
    )
    assert report.failures == [], report.failures[:5]
    assert report.replicas[victim] > 0  # it served before its node died

    # The lost replica is re-placed, on the node that is left.
    def replaced() -> bool:
        now = ready(server, "survivor")
        return len(now) == 2 and victim not in {r.replica_id for r in now}

    wait_until(replaced, 180, "a replacement replica")
    nodes = {cluster.node_of(r.replica_id) for r in ready(server, "survivor")}
    assert nodes == {cluster.worker_node_id(1)}
    with server.client() as c:
        lost = [e for e in c.events("survivor") if victim in e.message]
    assert lost, "no event names the lost replica"
