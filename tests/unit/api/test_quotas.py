"""Quota refusals over the real API: every change that would grow a project past a quota
is refused with 409 `Quota exceeded` naming the quota and the numbers; changes that do not
grow pass even over a quota."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.core.phases import EndpointStatus
from podium.store import Database
from tests.support.fake_nvml import one_gpu_node
from tests.unit.api.conftest import spec

__all__ = ["one_gpu_node"]  # a fixture: gpu-small deploys only on a node with a GPU

P = "/api/v1/projects"
EP = "/api/v1/endpoints"
Q = {"project": "team"}


@pytest.fixture
def team(client: TestClient) -> None:
    assert client.post(P, json={"name": "team"}).status_code == 201
    r = client.post(
        "/api/v1/models/iris/versions",
        params={"filename": "m.skops", "framework": "sklearn", "project": "team"},
        content=b"v1",
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text


def quotas(client: TestClient, **q: Any) -> None:
    r = client.patch(f"{P}/team", json={"quotas": q})
    assert r.status_code == 200, r.text


def create(client: TestClient, name: str, **kw: Any) -> Any:
    return client.post(EP, json=spec(name, project="team", **kw))


def refused(r: Any, quota: str, detail: str) -> None:
    assert r.status_code == 409, r.text
    body = r.json()
    assert (body["title"], body["field"], body["detail"]) == ("Quota exceeded", quota, detail)


def usage(client: TestClient) -> dict[str, Any]:
    return client.get(f"{P}/team").json()["usage"]


def test_deploy_past_max_endpoints(client: TestClient, team: None) -> None:
    quotas(client, max_endpoints=1)
    assert create(client, "one").status_code == 201
    refused(
        create(client, "two"),
        "max_endpoints",
        "project 'team' allows max_endpoints=1; this would make 2",
    )
    assert client.get(EP, params=Q).json()["items"][0]["name"] == "one"  # nothing written
    # a paused endpoint uses no quota
    assert client.post(f"{EP}/one/pause", params=Q).status_code == 200
    assert create(client, "two").status_code == 201
    refused(
        client.post(f"{EP}/one/resume", params=Q),
        "max_endpoints",
        "project 'team' allows max_endpoints=1; this would make 2",
    )


def test_deploy_and_scale_past_max_replicas(client: TestClient, team: None) -> None:
    quotas(client, max_replicas=4)
    assert create(client, "big", scaling={"min_replicas": 3, "max_replicas": 5}).status_code == 201
    refused(
        create(client, "more", scaling={"min_replicas": 2, "max_replicas": 2}),
        "max_replicas",
        "project 'team' allows max_replicas=4; this would make 5",
    )
    # scaled to zero: no replicas
    assert create(client, "idle", scaling={"min_replicas": 0, "max_replicas": 3}).status_code == 201
    refused(
        client.post(f"{EP}/big/scale", params=Q, json={"min_replicas": 5, "max_replicas": 5}),
        "max_replicas",
        "project 'team' allows max_replicas=4; this would make 5",
    )
    refused(
        client.patch(
            f"{EP}/big", params=Q, json={"scaling": {"min_replicas": 6, "max_replicas": 6}}
        ),
        "max_replicas",
        "project 'team' allows max_replicas=4; this would make 6",
    )
    assert client.get(f"{EP}/big", params=Q).json()["desired_replicas"] == 3
    # waking the idle one would make 4: fits; a second one would not
    assert client.post(f"{EP}/idle/wake", params=Q).json()["desired_replicas"] == 1
    assert (
        create(client, "idle-2", scaling={"min_replicas": 0, "max_replicas": 1}).status_code == 201
    )
    refused(
        client.post(f"{EP}/idle-2/wake", params=Q),
        "max_replicas",
        "project 'team' allows max_replicas=4; this would make 5",
    )
    # scaling down always passes
    r = client.post(f"{EP}/big/scale", params=Q, json={"min_replicas": 1, "max_replicas": 5})
    assert r.status_code == 200
    assert usage(client)["replicas"] == 4  # desired stays 3 within the new bounds, + idle's 1


def test_update_instance_type_past_max_cpus_and_max_gpus(
    client: TestClient, team: None, one_gpu_node: None
) -> None:
    quotas(client, max_cpus=4, max_gpus=0)
    assert create(client, "web", scaling={"min_replicas": 2, "max_replicas": 2}).status_code == 201
    assert usage(client)["cpus"] == 2
    refused(
        client.patch(f"{EP}/web", params=Q, json={"instance_type": "cpu-large"}),
        "max_cpus",
        "project 'team' allows max_cpus=4; this would make 8",
    )
    assert (
        client.patch(f"{EP}/web", params=Q, json={"instance_type": "cpu-medium"}).status_code == 200
    )
    assert usage(client)["cpus"] == 4
    quotas(client, max_cpus=None)
    refused(
        client.patch(f"{EP}/web", params=Q, json={"instance_type": "gpu-small"}),
        "max_gpus",
        "project 'team' allows max_gpus=0; this would make 2",
    )
    refused(
        create(client, "gpu", instance_type="gpu-small"),
        "max_gpus",
        "project 'team' allows max_gpus=0; this would make 1",
    )


def test_resume_past_max_replicas(client: TestClient, team: None) -> None:
    assert create(client, "web", scaling={"min_replicas": 2, "max_replicas": 2}).status_code == 201
    assert client.post(f"{EP}/web/pause", params=Q).status_code == 200
    quotas(client, max_replicas=1)
    refused(
        client.post(f"{EP}/web/resume", params=Q),
        "max_replicas",
        "project 'team' allows max_replicas=1; this would make 2",
    )
    assert client.get(f"{EP}/web", params=Q).json()["status"] == "paused"


def test_a_quota_lowered_below_usage_blocks_growth_only(client: TestClient, team: None) -> None:
    assert create(client, "web", scaling={"min_replicas": 3, "max_replicas": 3}).status_code == 201
    quotas(client, max_replicas=1)
    # changes that do not grow the replicas still pass
    assert client.patch(f"{EP}/web", params=Q, json={"labels": {"a": "b"}}).status_code == 200
    assert client.post(f"{EP}/web/pause", params=Q).status_code == 200
    # other projects are not limited by this one's quotas
    assert client.post(EP, json=spec("free", model="hf://org/tiny")).status_code == 201


def test_scaled_to_zero_uses_no_endpoint_and_waking_is_checked(
    client: TestClient, team: None
) -> None:
    quotas(client, max_endpoints=1)
    assert create(client, "idle", scaling={"min_replicas": 0, "max_replicas": 1}).status_code == 201
    assert usage(client)["endpoints"] == 0
    assert create(client, "web").status_code == 201  # the idle one takes no endpoint
    refused(
        client.post(f"{EP}/idle/wake", params=Q),
        "max_endpoints",
        "project 'team' allows max_endpoints=1; this would make 2",
    )
    assert client.get(f"{EP}/idle", params=Q).json()["desired_replicas"] == 0
    assert client.delete(f"{EP}/web", params=Q).status_code in (200, 202)
    assert client.post(f"{EP}/idle/wake", params=Q).json()["desired_replicas"] == 1
    assert usage(client)["endpoints"] == 1


def test_a_paused_endpoint_at_zero_resumes_without_taking_an_endpoint(
    client: TestClient, team: None
) -> None:
    assert create(client, "idle", scaling={"min_replicas": 0, "max_replicas": 1}).status_code == 201
    assert client.post(f"{EP}/idle/pause", params=Q).status_code == 200
    quotas(client, max_endpoints=0)
    assert client.post(f"{EP}/idle/resume", params=Q).status_code == 200  # still at zero
    refused(
        client.post(f"{EP}/idle/wake", params=Q),
        "max_endpoints",
        "project 'team' allows max_endpoints=0; this would make 1",
    )


def test_a_failed_endpoint_holds_no_replicas(client: TestClient, team: None, db: Database) -> None:
    quotas(client, max_replicas=2, max_endpoints=2)
    assert create(client, "bad", scaling={"min_replicas": 2, "max_replicas": 2}).status_code == 201
    with db.unit_of_work() as uow:
        uow.endpoints.set_status("team.bad", EndpointStatus.FAILED, reason="load failed")
    assert (usage(client)["endpoints"], usage(client)["replicas"]) == (1, 0)
    assert create(client, "good", scaling={"min_replicas": 2, "max_replicas": 2}).status_code == 201
    # still an endpoint: a third is refused
    refused(
        create(client, "third"),
        "max_endpoints",
        "project 'team' allows max_endpoints=2; this would make 3",
    )
    # retrying the failed one (an update) brings its replicas back: checked again
    refused(
        client.patch(f"{EP}/bad", params=Q, json={"labels": {"try": "again"}}),
        "max_replicas",
        "project 'team' allows max_replicas=2; this would make 4",
    )


def test_resources_cannot_escape_memory_through_a_cpu_quota(client: TestClient, team: None) -> None:
    """With named types the CPU quota also bounded memory (cpu-small: 1 CPU, 2 GiB);
    `resources` decouple them, so memory has its own quota: 50 replicas of 0.02 CPUs and
    4 GiB fit `max_cpus: 1` but not `max_memory_mb: 8192`."""
    quotas(client, max_cpus=1, max_memory_mb=8192)
    tiny_cpu = {"cpus": 0.02, "memory": "4Gi"}
    many = {"min_replicas": 50, "max_replicas": 50}
    refused(
        create(client, "big", resources=tiny_cpu, scaling=many),
        "max_memory_mb",
        "project 'team' allows max_memory_mb=8192; this would make 204800",
    )
    two = {"min_replicas": 2, "max_replicas": 2}
    assert create(client, "fits", resources=tiny_cpu, scaling=two).status_code == 201
    assert (usage(client)["memory_mb"], usage(client)["cpus"]) == (8192, 0.04)
    r = client.post(f"{EP}/fits/scale", params=Q, json={"min_replicas": 3, "max_replicas": 3})
    refused(r, "max_memory_mb", "project 'team' allows max_memory_mb=8192; this would make 12288")
    assert client.get(f"{P}/team").json()["quotas"]["max_memory_mb"] == 8192
