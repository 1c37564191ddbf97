"""A scaling rule's `window` and `watch_period` through the API: stored in seconds, and
clear 422s naming the field for what cannot work."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.api.conftest import push, spec

EP = "/api/v1/endpoints"


@pytest.fixture
def iris(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201


def rule(**kw: Any) -> dict[str, Any]:
    return {"scaling": {"max_replicas": 3, "rules": [{"metric": "cpu", "target": 60, **kw}]}}


def test_window_and_watch_period_are_stored_in_seconds(client: TestClient, iris: None) -> None:
    r = client.post(EP, json=spec(**rule(window="2m", watch_period="15s")))
    assert r.status_code == 201, r.text
    [stored] = r.json()["spec"]["scaling"]["rules"]
    assert (stored["window"], stored["watch_period"]) == (120.0, 15.0)
    # A patch of the scaling block changes them in place (no new revision).
    r = client.patch(f"{EP}/iris-ep", json=rule(window=30, watch_period=5))
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 1
    assert r.json()["spec"]["scaling"]["rules"][0]["window"] == 30.0


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"window": "5s", "watch_period": "10s"}, "scaling.rules.0.watch_period",
         "watch_period (10s) must not exceed the rule's window, 5s"),
        ({"watch_period": "10m"}, "scaling.rules.0.watch_period",
         "watch_period (600s) must not exceed the rule's window (stable_window), 30s"),
        ({"window": "2h"}, "scaling.rules.0.window", "a rule window is at most 1h (3600s)"),
        ({"window": "61m", "watch_period": "1m"}, "scaling.rules.0.window", "at most 1h"),
        ({"watch_period": 0.5}, "scaling.rules.0.watch_period", "greater than or equal to 1"),
        ({"watch_period": "500ms"}, "scaling.rules.0.watch_period", "greater than or equal to 1"),
        ({"window": "soon"}, "scaling.rules.0.window", "'soon' is not a duration"),
        ({"window": 0}, "scaling.rules.0.window", "greater than or equal to 1"),
        ({"window": "500ms"}, "scaling.rules.0.window", "greater than or equal to 1"),
        ({"watch_period": "2h"}, "scaling.rules.0.watch_period", "less than or equal to 3600"),
    ],
)  # fmt: skip
def test_bad_windows_are_422s_naming_the_field(
    client: TestClient, iris: None, fields: dict[str, Any], field: str, says: str
) -> None:
    r = client.post(EP, json=spec(**rule(**fields)))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["field"] == field
    assert says in problem["detail"]


def test_a_patch_is_checked_against_the_stable_window_it_keeps(
    client: TestClient, iris: None
) -> None:
    """The effective window of a rule without its own is the stable window: a patch giving
    a watch_period past it (or shrinking the stable window under it) is a 422 naming the
    rule's watch_period, and nothing is stored."""
    r = client.post(EP, json=spec(**rule(watch_period="20s")))
    assert r.status_code == 201, r.text
    for patch in (
        {"scaling": {"max_replicas": 3, "rules": [{"metric": "cpu", "target": 60,
                                                   "watch_period": "1m"}]}},
        {"scaling": {"max_replicas": 3, "stable_window": "10s", "panic_window": "1s",
                     "rules": [{"metric": "cpu", "target": 60, "watch_period": "20s"}]}},
    ):  # fmt: skip
        r = client.patch(f"{EP}/iris-ep", json=patch)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "scaling.rules.0.watch_period"
    stored = client.get(f"{EP}/iris-ep").json()["spec"]["scaling"]
    assert (stored["stable_window"], stored["rules"][0]["watch_period"]) == (30.0, 20.0)
