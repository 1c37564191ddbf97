"""What a user reaches of a replica through a real server (issue 10's mismatches):

* OIP v2 reports the model's version (`tensors:2`), not the endpoint revision, which is the
  `X-Podium-Revision` header; after an update that makes revision 2 of the same model, the
  version stays "2";
* the replica's internal routes (`/metrics`, `/health/…`, `/podium/…`) are refused by the
  gateway with 404;
* per-replica metrics come from the control API instead (SDK `replica_metrics`).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from podium.client import NotFound
from tests.support.server import ServerProcess, TritonBearer, running_server, wait_running
from tests.unit.replica.bundles import write_tensor_bundle

NAME = "tensors"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("surface")
    with running_server(tmp / "home") as s, s.client() as c:
        bundle = write_tensor_bundle(tmp / "bundle")
        c.push_model(bundle, NAME)
        (bundle / "NOTES.txt").write_text("second version\n")  # new content: a new version
        assert c.push_model(bundle, NAME).version == 2  # differs from the revision (1)
        c.deploy({"name": NAME, "model": NAME, "framework": "python"})
        wait_running(c, NAME)
        yield s


def triton_client(server: ServerProcess) -> triton.InferenceServerClient:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}/endpoints/{NAME}")
    client.register_plugin(TritonBearer(server.token))
    return client


def versions_seen(server: ServerProcess) -> tuple[list[str], str, str]:
    """(metadata versions, an infer answer's model_version, the revision header)."""
    with triton_client(server) as tc:
        meta = tc.get_model_metadata(NAME)
        x = triton.InferInput("x", [1, 2], "FP32")
        x.set_data_from_numpy(np.ones((1, 2), np.float32))
        answer = tc.infer(NAME, [x]).get_response()
    head = httpx.get(f"{server.url}/endpoints/{NAME}/v2/models/{NAME}", headers=server.headers)
    return meta["versions"], answer["model_version"], head.headers["x-podium-revision"]


def test_v2_reports_the_models_version_and_the_revision_apart(server: ServerProcess) -> None:
    with server.client() as c:
        before = c.endpoint(NAME).revision  # 1 on the first run
    assert versions_seen(server) == (["2"], "2", str(before))
    with server.client() as c:
        ep = c.update(NAME, {"env": {"AFTER": str(before)}}, wait=True, timeout=120)
    assert ep.revision == before + 1
    assert versions_seen(server) == (["2"], "2", str(ep.revision))  # same model, new revision


@pytest.mark.parametrize("path", ["metrics", "health/live", "health/ready", "podium/info"])
def test_the_gateway_refuses_a_replicas_internal_routes(server: ServerProcess, path: str) -> None:
    r = httpx.get(f"{server.url}/endpoints/{NAME}/{path}", headers=server.headers)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "x-podium-replica" not in r.headers  # answered by the gateway itself
    # The public routes still pass.
    assert httpx.get(
        f"{server.url}/endpoints/{NAME}/v2/health/ready", headers=server.headers
    ).json() == {"ready": True}


def test_replica_metrics_through_the_control_api(server: ServerProcess) -> None:
    with server.client() as c:
        replicas = c.endpoint(NAME).replicas
        assert replicas
        text = c.replica_metrics(NAME, replicas[0].replica_id)
        with pytest.raises(NotFound):
            c.replica_metrics(NAME, "tensors-r9-none")
    assert "podium_replica_in_flight" in text
    assert "podium_replica_requests_total" in text
