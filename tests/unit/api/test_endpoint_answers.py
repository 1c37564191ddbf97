"""What the API's endpoint changes answer and route at once (issue 8: items 6, 14, small
things): a created endpoint is routable before the controller's next pass, a deleted one is
not; a rollout answers `updating`; a wake answers the state after it; a spec without a
framework takes the model version's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.routing import InProcessRoutingSource
from podium.store import Database
from tests.unit.api.conftest import add_replica, push, spec

EP = "/api/v1/endpoints"


@pytest.fixture
def holder() -> InProcessRoutingSource:
    return InProcessRoutingSource()


@pytest.fixture
def routed(
    ctx: ApiContext, holder: InProcessRoutingSource, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    ctx.routing = holder
    with TestClient(create_api(ctx), headers=admin_headers) as c:
        assert push(c, "iris", b"v1", filename="m.skops").status_code == 201
        yield c


def test_created_endpoint_is_routed_before_the_controller_runs(
    routed: TestClient, holder: InProcessRoutingSource
) -> None:
    r = routed.post(EP, json=spec(timeout_s=12, max_concurrency=3))
    assert r.status_code == 201, r.text
    route = holder.table.endpoints["iris-ep"]  # no controller pass has published anything
    assert route.status is EndpointStatus.PENDING
    assert route.replicas == ()
    assert (route.timeout_s, route.max_concurrency, route.framework) == (12, 3, "sklearn")
    holder.publish({})  # the controller's table from a store read before the create
    assert "iris-ep" in holder.table.endpoints


def test_scaled_to_zero_endpoint_is_routed_as_such(
    routed: TestClient, holder: InProcessRoutingSource
) -> None:
    body = spec(scaling={"min_replicas": 0, "max_replicas": 1})
    assert routed.post(EP, json=body).status_code == 201
    assert holder.table.endpoints["iris-ep"].status is EndpointStatus.SCALED_TO_ZERO


def test_deleted_endpoint_leaves_the_table_at_once(
    routed: TestClient, holder: InProcessRoutingSource
) -> None:
    assert routed.post(EP, json=spec()).status_code == 201
    assert routed.delete(f"{EP}/iris-ep").status_code == 202
    assert "iris-ep" not in holder.table.endpoints


def test_refused_create_routes_nothing(routed: TestClient, holder: InProcessRoutingSource) -> None:
    r = routed.post(EP, json=spec(model="nosuch"))
    assert r.status_code == 404
    assert holder.table.endpoints == {}


def test_rollout_answers_updating(routed: TestClient, db: Database) -> None:
    assert routed.post(EP, json=spec()).status_code == 201
    add_replica(db, "iris-ep", "iris-ep-r1", state=ReplicaState.READY)
    with db.unit_of_work() as uow:  # what the controller writes once the replica is ready
        uow.endpoints.set_status("iris-ep", EndpointStatus.INITIALIZING)
        uow.endpoints.set_status("iris-ep", EndpointStatus.RUNNING)
    r = routed.patch(f"{EP}/iris-ep", json={"env": {"A": "1"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["revision"], body["status"]) == (2, "updating")
    assert body["status_reason"] == "rolling out revision 2"
    assert routed.get(f"{EP}/iris-ep").json()["status"] == "updating"
    # A change that needs no new replicas is no rollout.
    r = routed.patch(f"{EP}/iris-ep", json={"labels": {"team": "ml"}})
    assert (r.json()["revision"], r.json()["status"]) == (2, "updating")


def test_new_revision_without_replicas_is_no_rollout(routed: TestClient) -> None:
    assert routed.post(EP, json=spec()).status_code == 201
    r = routed.patch(f"{EP}/iris-ep", json={"env": {"A": "1"}})
    assert (r.json()["revision"], r.json()["status"]) == (2, "pending")


def test_wake_answers_the_state_after_the_wake(routed: TestClient) -> None:
    body = spec(scaling={"min_replicas": 0, "max_replicas": 2})
    assert routed.post(EP, json=body).json()["status"] == "scaled_to_zero"
    r = routed.post(f"{EP}/iris-ep/wake")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["desired_replicas"]) == ("initializing", 1)
    kinds = [e["kind"] for e in routed.get(f"{EP}/iris-ep/events").json()["items"]]
    assert kinds[-2:] == ["scaled", "status"]


def test_framework_defaults_to_the_model_versions(routed: TestClient) -> None:
    body = {"name": "iris-ep", "model": "iris"}
    r = routed.post(EP, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["framework"] == "sklearn"


def test_framework_given_wins(routed: TestClient) -> None:
    r = routed.post(EP, json={"name": "iris-ep", "model": "iris", "framework": "python"})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["framework"] == "python"


def test_missing_framework_without_one_to_take_is_a_422_naming_it(
    routed: TestClient, tmp_path: Path
) -> None:
    r = routed.post(EP, json={"name": "hf-ep", "model": "hf://org/tiny@main"})
    assert (r.status_code, r.json()["field"]) == (422, "framework"), r.text
    assert "Hugging Face" in r.json()["detail"]
    assert push(routed, "blob", b"x", framework=None).status_code == 201
    r = routed.post(EP, json={"name": "blob-ep", "model": "blob"})
    assert (r.status_code, r.json()["field"]) == (422, "framework"), r.text
