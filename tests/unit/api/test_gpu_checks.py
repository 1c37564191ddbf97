"""A GPU replica on a node without a GPU is refused at deploy time (422 naming the field
and saying the node has no GPU) when the local backend places replicas; with Ray the
cluster decides. Over the real API; the node is measured through a fake NVML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api.services.checks import check_size
from podium.core.errors import Invalid
from podium.core.settings import BackendKind, Settings
from podium.core.spec import EndpointCreate
from tests.support.fake_nvml import no_gpu_node, one_gpu_node
from tests.unit.api.conftest import push, spec

__all__ = ["no_gpu_node", "one_gpu_node"]

EP = "/api/v1/endpoints"


def _invalid(r: Any, field: str, detail: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["field"], body["detail"]) == (field, detail)


def test_gpu_instance_type_on_a_gpu_less_node_is_refused(
    client: TestClient, no_gpu_node: None
) -> None:
    assert push(client, "iris", b"v1").status_code == 201
    _invalid(
        client.post(EP, json=spec("chat", instance_type="gpu-small")),
        "instance_type",
        "instance type 'gpu-small' asks for 1 GPU per replica; this node has no GPU "
        "(none NVML could find)",
    )
    assert client.get(f"{EP}/chat").status_code == 404  # nothing written
    assert client.post(EP, json=spec("web")).status_code == 201  # a CPU type deploys
    _invalid(
        client.patch(f"{EP}/web", json={"instance_type": "gpu-small"}),
        "instance_type",
        "instance type 'gpu-small' asks for 1 GPU per replica; this node has no GPU "
        "(none NVML could find)",
    )
    _invalid(
        client.post(EP, json=spec("custom", resources={"cpus": 1, "memory": 512, "gpus": 1})),
        "resources.gpus",
        "1 GPUs asked; this node has no GPU (none NVML could find)",
    )


def test_gpu_instance_type_deploys_on_a_node_with_a_gpu(
    client: TestClient, one_gpu_node: None
) -> None:
    assert push(client, "iris", b"v1").status_code == 201
    assert client.post(EP, json=spec("chat", instance_type="gpu-small")).status_code == 201


def _create(**kw: Any) -> EndpointCreate:
    return EndpointCreate.model_validate({"name": "chat", "model": "iris:1", **kw})


def test_with_ray_the_cluster_decides(tmp_path: Path, no_gpu_node: None) -> None:
    local = Settings(home=tmp_path / "home")
    with pytest.raises(Invalid) as caught:
        check_size(local, _create(instance_type="gpu-small"))
    assert caught.value.field == "instance_type"
    ray = Settings(home=tmp_path / "home", backend=BackendKind.RAY)
    check_size(ray, _create(instance_type="gpu-small"))  # no error: Ray's nodes may have one


def test_transformers_engine_args_are_checked_at_deploy(client: TestClient) -> None:
    assert push(client, "iris", b"v1").status_code == 201
    bad = spec("chat", framework="transformers", engine_args={"device": "tpu"})
    r = client.post(EP, json=bad)
    assert r.status_code == 422 and r.json()["field"] == "engine_args.device", r.text
    bad = spec("chat", framework="transformers", engine_args={"dtype": "int8"})
    assert client.post(EP, json=bad).json()["field"] == "engine_args.dtype"
