"""Specs stored before a field bound existed stay readable: lists, gets and the revision
history keep working (the bounds apply to what users send, not to what the store holds)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from podium.core.bounds import STORED
from podium.core.phases import EndpointStatus
from podium.core.spec import EndpointSpec
from podium.store import Database
from tests.unit.api.conftest import push, spec


def test_an_over_bound_stored_spec_is_still_served(client: TestClient, db: Database) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    old = spec(name="old-ep", labels={f"k{i}": "v" * 300 for i in range(80)})
    stored = EndpointSpec.model_validate(old, context=STORED)  # as an older Podium wrote it
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            stored, model_ref="iris:1", status=EndpointStatus.PENDING, desired_replicas=1
        )
    listed = client.get("/api/v1/endpoints")
    assert listed.status_code == 200, listed.text
    assert [e["name"] for e in listed.json()["items"]] == ["old-ep"]
    assert client.get("/api/v1/endpoints/old-ep").status_code == 200
    assert client.get("/api/v1/endpoints/old-ep/revisions").status_code == 200
    # A change is validated whole: it must bring the spec within the bounds.
    r = client.patch("/api/v1/endpoints/old-ep", json={"max_queue": 10})
    assert r.status_code == 422
    assert r.json()["field"].startswith("labels")
    r = client.patch("/api/v1/endpoints/old-ep", json={"labels": {"team": "a"}})
    assert r.status_code == 200, r.text


def test_a_stored_rule_window_past_the_1h_bound_is_still_served(
    client: TestClient, db: Database
) -> None:
    """Rule windows up to 7 days, and a watch_period past the stable window, were accepted
    before their bounds: such a spec still loads, and a change must bring it within them."""
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    rules = [
        {"metric": "cpu", "target": 50, "window": "168h"},
        {"metric": "memory", "target": 50, "watch_period": "10m"},
    ]
    old = spec(name="old-ep", scaling={"max_replicas": 2, "rules": rules})
    stored = EndpointSpec.model_validate(old, context=STORED)
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            stored, model_ref="iris:1", status=EndpointStatus.PENDING, desired_replicas=1
        )
    got = client.get("/api/v1/endpoints/old-ep")
    assert got.status_code == 200, got.text
    assert got.json()["spec"]["scaling"]["rules"][0]["window"] == 7 * 86400.0
    r = client.patch("/api/v1/endpoints/old-ep", json={"max_queue": 10})
    assert r.status_code == 422
    assert r.json()["field"] == "scaling.rules.0.window"
