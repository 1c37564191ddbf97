from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext
from podium.core.ids import NAME_RE
from podium.core.phases import EndpointStatus, ReplicaState
from tests.unit.api.conftest import WakeRecorder, add_replica, push, spec

EP = "/api/v1/endpoints"


@pytest.fixture
def iris(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201


def _create(client: TestClient, **kw: Any) -> dict[str, Any]:
    r = client.post(EP, json=spec(**kw))
    assert r.status_code == 201, r.text
    return r.json()


def _events(client: TestClient, name: str = "iris-ep") -> list[dict[str, Any]]:
    r = client.get(f"{EP}/{name}/events")
    assert r.status_code == 200
    return r.json()["items"]


def test_create_endpoint(client: TestClient, iris: None, wake: WakeRecorder) -> None:
    body = _create(client, labels={"team": "ml"})
    assert body["status"] == "pending"
    assert body["model_ref"] == "iris:1"
    assert body["revision"] == 1
    assert body["desired_replicas"] == 1
    assert body["ready_replicas"] == 0
    assert body["url"] == "http://127.0.0.1:8123/endpoints/iris-ep"
    assert body["spec"]["model"] == "iris"
    assert wake.calls == ["iris-ep"]
    [event] = _events(client)
    assert (event["kind"], event["message"]) == (
        "spec",
        "created endpoint iris-ep (revision 1, model iris:1)",
    )
    assert client.get(f"{EP}/iris-ep").json()["model_ref"] == "iris:1"
    again = client.post(EP, json=spec())
    assert (again.status_code, again.json()["field"]) == (409, "name")


def test_min_zero_starts_scaled_to_zero(client: TestClient, iris: None) -> None:
    body = _create(client, scaling={"min_replicas": 0, "max_replicas": 2})
    assert (body["status"], body["desired_replicas"]) == ("scaled_to_zero", 0)


def test_hf_refs_are_stored_as_given(client: TestClient) -> None:
    body = _create(client, model="hf://org/tiny@main")
    assert body["model_ref"] == "hf://org/tiny@main"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"scaling": {"min_replicas": 3, "max_replicas": 1}}, "scaling.max_replicas"),
        ({"scaling": {"min_replicas": -1}}, "scaling.min_replicas"),
        ({"scaling": {"target_concurrency": 0}}, "scaling.target_concurrency"),
        ({"scaling": {"stable_window": "-5s"}}, "scaling.stable_window"),
        ({"scaling": {"scale_down_delay": -1}}, "scaling.scale_down_delay"),
        ({"scaling": {"panic_window": "1m", "stable_window": "30s"}}, "scaling.panic_window"),
        ({"scaling": {"rules": [{"metric": "gpu", "target": 50}]}}, "scaling.rules.0.metric"),
        ({"scaling": {"rules": [{"metric": "custom", "target": 5}]}}, "scaling.rules.0"),
        ({"scaling": {"max_queued_requests": -1}}, "scaling.max_queued_requests"),
        ({"framework": "nope"}, "framework"),
        ({"instance_type": "gpu-huge"}, "instance_type"),
        ({"colour": "red"}, "colour"),
        ({"max_concurrency": "lots"}, "max_concurrency"),
        ({"model": "not a ref!"}, "model"),
    ],
)
def test_invalid_specs_name_the_field(
    client: TestClient, iris: None, wake: WakeRecorder, change: dict[str, Any], field: str
) -> None:
    r = client.post(EP, json={**spec(), **change})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["field"] == field
    assert body["detail"].startswith(f"{field}: ") or field in ("framework", "instance_type")
    assert body["errors"][0]["field"] == field
    assert wake.calls == []
    assert client.get(EP).json()["items"] == []


def test_unknown_model_is_404(client: TestClient, iris: None) -> None:
    for model in ("ghost", "iris:7"):
        r = client.post(EP, json=spec(model=model))
        assert (r.status_code, r.json()["field"]) == (404, "model")


def test_malformed_json_names_the_body(client: TestClient) -> None:
    r = client.post(EP, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["field"] == "body"


def test_list_filters(client: TestClient, iris: None) -> None:
    _create(client, name="alpha-one", labels={"team": "a", "tier": "gold"})
    _create(client, name="beta-two", labels={"team": "b"}, scaling={"min_replicas": 0})
    names = lambda q: [e["name"] for e in client.get(EP, params=q).json()["items"]]  # noqa: E731
    assert names({}) == ["alpha-one", "beta-two"]
    assert names({"label": "team=b"}) == ["beta-two"]
    assert names([("label", "team=a"), ("label", "tier=gold")]) == ["alpha-one"]  # all match
    assert names([("label", "team=b"), ("label", "tier=gold")]) == []
    assert names({"name": "alpha"}) == ["alpha-one"]
    assert names({"status": "scaled_to_zero"}) == ["beta-two"]
    assert names({"status": "pending", "label": "team=b"}) == []
    for q, field in (({"label": "team"}, "label"), ({"status": "sleepy"}, "status")):
        r = client.get(EP, params=q)
        assert (r.status_code, r.json()["field"]) == (422, field)


def test_get_shows_replicas(client: TestClient, iris: None, ctx: ApiContext) -> None:
    _create(client)
    add_replica(ctx.db, "iris-ep", "iris-ep-r1-aaa")
    add_replica(ctx.db, "iris-ep", "iris-ep-r1-bbb", state=ReplicaState.STARTING)
    body = client.get(f"{EP}/iris-ep").json()
    assert [r["replica_id"] for r in body["replicas"]] == ["iris-ep-r1-aaa", "iris-ep-r1-bbb"]
    assert body["ready_replicas"] == 1
    r = client.get(f"{EP}/nobody")
    assert (r.status_code, r.json()["field"]) == (404, "name")


def test_patch_without_new_revision(client: TestClient, iris: None, wake: WakeRecorder) -> None:
    _create(client)
    r = client.patch(
        f"{EP}/iris-ep",
        json={"scaling": {"min_replicas": 2, "max_replicas": 3}, "labels": {"x": "y"}},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["revision"], body["desired_replicas"]) == (1, 2)
    assert body["spec"]["labels"] == {"x": "y"}
    assert len(client.get(f"{EP}/iris-ep/revisions").json()) == 1
    assert _events(client)[-1]["message"] == (
        "updated endpoint iris-ep: scaling min 2, max 3; labels"
    )
    assert wake.calls == ["iris-ep", "iris-ep"]


def test_patch_with_new_revision(client: TestClient, iris: None) -> None:
    _create(client)
    # the same text "iris" now means iris:2: a new revision
    push(client, "iris", b"v2", filename="m.skops")
    body = client.patch(f"{EP}/iris-ep", json={"model": "iris"}).json()
    assert (body["revision"], body["model_ref"]) == (2, "iris:2")
    assert _events(client)[-1]["message"] == (
        "updated endpoint iris-ep (revision 2: model iris:1 → iris:2)"
    )
    # a revision field
    body = client.patch(f"{EP}/iris-ep", json={"env": {"A": "1"}}).json()
    assert (body["revision"], body["model_ref"]) == (3, "iris:2")
    # pinning the version it already serves: no new revision
    body = client.patch(f"{EP}/iris-ep", json={"model": "iris:2"}).json()
    assert body["revision"] == 3
    # a scaling-only change keeps the model even though "iris" would resolve again
    push(client, "iris", b"v3", filename="m.skops")
    body = client.patch(f"{EP}/iris-ep", json={"timeout_s": 5}).json()
    assert (body["revision"], body["model_ref"]) == (3, "iris:2")
    revisions = client.get(f"{EP}/iris-ep/revisions").json()
    assert [(r["number"], r["model_ref"]) for r in revisions] == [
        (1, "iris:1"),
        (2, "iris:2"),
        (3, "iris:2"),
    ]
    assert revisions[2]["spec"]["env"] == {"A": "1"}
    r = client.patch(f"{EP}/iris-ep", json={"model": "ghost"})
    assert (r.status_code, r.json()["field"]) == (404, "model")
    r = client.patch(f"{EP}/iris-ep", json={"name": "renamed"})
    assert (r.status_code, r.json()["field"]) == (422, "name")


def test_scale(client: TestClient, iris: None, wake: WakeRecorder) -> None:
    _create(client, scaling={"min_replicas": 2, "max_replicas": 4})
    body = client.post(f"{EP}/iris-ep/scale", json={"min_replicas": 1, "max_replicas": 1}).json()
    scaling = body["spec"]["scaling"]
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (1, 1)
    assert (body["desired_replicas"], body["revision"]) == (1, 1)
    assert _events(client)[-1]["kind"] == "scaled"
    assert _events(client)[-1]["message"] == "scale bounds set to min 1, max 1 by user"
    assert wake.calls[-1] == "iris-ep"
    r = client.post(f"{EP}/iris-ep/scale", json={"min_replicas": 3, "max_replicas": 2})
    assert r.status_code == 422
    assert (r.json()["field"], r.json()["detail"]) == (
        "max_replicas",
        "max_replicas: min_replicas (3) must not exceed max_replicas (2)",
    )


def test_pause_and_resume(client: TestClient, iris: None) -> None:
    _create(client, scaling={"min_replicas": 2, "max_replicas": 2})
    r = client.post(f"{EP}/iris-ep/resume")
    assert r.status_code == 409
    assert "not paused" in r.json()["detail"]
    body = client.post(f"{EP}/iris-ep/pause").json()
    assert (body["status"], body["desired_replicas"]) == ("paused", 2)
    assert client.post(f"{EP}/iris-ep/pause").status_code == 200  # idempotent
    assert client.post(f"{EP}/iris-ep/resume").json()["status"] == "pending"
    messages = [e["message"] for e in _events(client)]
    assert messages[-2:] == ["paused endpoint iris-ep", "resumed endpoint iris-ep"]


def test_delete_marks_deleting(client: TestClient, iris: None, wake: WakeRecorder) -> None:
    _create(client)
    r = client.delete(f"{EP}/iris-ep")
    assert r.status_code == 202
    assert r.json()["status"] == EndpointStatus.DELETING
    assert wake.calls[-1] == "iris-ep"
    assert _events(client)[-1]["message"] == "deleting endpoint iris-ep"
    assert client.delete(f"{EP}/iris-ep").status_code == 202
    for call in (
        lambda: client.patch(f"{EP}/iris-ep", json={"timeout_s": 3}),
        lambda: client.post(f"{EP}/iris-ep/pause"),
        lambda: client.post(f"{EP}/iris-ep/scale", json={"min_replicas": 1, "max_replicas": 2}),
    ):
        assert call().status_code == 409
    assert client.delete(f"{EP}/nobody").status_code == 404


def test_events_paging(client: TestClient, iris: None) -> None:
    _create(client)
    client.post(f"{EP}/iris-ep/pause")
    client.post(f"{EP}/iris-ep/resume")
    events = _events(client)
    assert len(events) == 3
    page = client.get(f"{EP}/iris-ep/events", params={"after": events[0]["id"], "limit": 1})
    assert [e["id"] for e in page.json()["items"]] == [events[1]["id"]]
    newest = client.get(f"{EP}/iris-ep/events", params={"limit": 2, "newest": "true"})
    assert [e["id"] for e in newest.json()["items"]] == [e["id"] for e in events[1:]]
    assert client.get(f"{EP}/nobody/events").status_code == 404
    assert client.get(f"{EP}/nobody/revisions").status_code == 404


def test_undecodable_body_names_the_body(client: TestClient) -> None:
    # Not UTF-8: the same answer as malformed JSON (it used to be a 400 here, a 422 there).
    for body in (b"\xda\x06", b'{"name": "caf\xe9"}'):
        r = client.post(EP, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["title"] == "Invalid"
        assert r.json()["field"] == "body"
        assert r.json()["detail"] == "body: malformed JSON (not UTF-8, or nested too deep)"
    r = client.patch(f"{EP}/x", content=b"\xda\x06", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["field"]) == (422, "body")


def test_scale_to_zero_now_and_what_ends_it(
    client: TestClient, iris: None, wake: WakeRecorder
) -> None:
    _create(client, scaling={"min_replicas": 2, "max_replicas": 3})
    body = client.post(f"{EP}/iris-ep/scale-to-zero").json()
    assert (body["desired_replicas"], body["spec"]["scaling"]["min_replicas"]) == (0, 2)
    assert _events(client)[-1]["message"] == (
        "scaled 2→0: scaled to zero by user (the next request wakes it)"
    )
    assert wake.calls[-1] == "iris-ep"
    # Paused: 409; a resume ends the scale-to-zero from before the pause (min applies).
    client.post(f"{EP}/iris-ep/pause")
    r = client.post(f"{EP}/iris-ep/scale-to-zero")
    assert (r.status_code, r.json()["field"]) == (409, "status")
    assert "paused" in r.json()["detail"]
    assert client.post(f"{EP}/iris-ep/resume").json()["desired_replicas"] == 2
    # A spec change asks for replicas again: its count is clamped into the bounds.
    client.post(f"{EP}/iris-ep/scale-to-zero")
    r = client.patch(f"{EP}/iris-ep", json={"labels": {"team": "ml"}})
    assert r.json()["desired_replicas"] == 2


def test_create_without_a_name_derives_one_from_the_model(client: TestClient, iris: None) -> None:
    made = []
    for _ in range(2):
        body = {k: v for k, v in spec().items() if k != "name"}
        r = client.post(EP, json=body)
        assert r.status_code == 201, r.text
        made.append(r.json()["name"])
    assert all(NAME_RE.match(n) and n.startswith("iris-") for n in made)
    assert made[0] != made[1]
    assert client.get(f"{EP}/{made[0]}").status_code == 200
