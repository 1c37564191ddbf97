"""A replica's internal routes (`/metrics`, `/health/…`, `/podium/…`) are Podium's own: the
gateway answers 404 for them and the replica never sees the request. Public routes that
merely look alike (`/v2/health/live`, `/healthz`, `/metrics-x`) are still forwarded."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.gateway.conftest import Replica, RunningGateway, Servers, endpoint


@pytest.fixture(scope="module")
def setup(module_servers: Servers) -> tuple[RunningGateway, Replica]:
    (replica,) = module_servers.replicas(1)
    running = module_servers.gateway()
    team = dataclasses.replace(endpoint("team.x", replica.route), project="team")
    running.publish(endpoint("echo", replica.route), endpoint("x", replica.route), team)
    return running, replica


REFUSED = [
    "/endpoints/echo/metrics",
    "/endpoints/echo/health/live?hung_after_s=1",
    "/endpoints/echo/health/ready",
    "/endpoints/echo/podium/info",
    "/endpoints/echo/%6detrics",  # the replica would decode it to /metrics
    "/endpoints/echo/health%2Flive",  # likewise /health/live
    "/endpoints/ghost/podium/info",  # unknown endpoint: the same 404
    "/endpoints/echo/a/../metrics",  # dot segments a replica may resolve
    "/endpoints/echo//metrics",
    "/endpoints/echo/a/%2E%2E/health/live",
]

FORWARDED = [
    "/endpoints/echo/v2/health/live",
    "/endpoints/echo/healthz",
    "/endpoints/echo/metrics-x",
    "/endpoints/echo/v1/podium/info",
    "/endpoints/echo/",
    "/endpoints/echo/v1/model.json",
]

# A percent-encoded prefix must not move where the forwarded path is cut from the raw path
# onto a later look-alike of the prefix: the replica gets what follows the endpoint's name
# (the first four were once forwarded as `/metrics`, `/podium/ready`, `/health/live`).
ENCODED_PREFIX = [
    ("/p/te%61m/endpoints/x/p/team/endpoints/y/metrics", "/p/team/endpoints/y/metrics"),
    ("/endpoint%73/x/endpoints/y/podium/ready", "/endpoints/y/podium/ready"),
    ("/%65ndpoints/x/endpoints/y/health/live", "/endpoints/y/health/live"),
    ("/p/team/endpoint%73/x/p/team/endpoints/x/metrics", "/p/team/endpoints/x/metrics"),
    ("/p/te%61m/endpoints/x/p/team/endpoints/y/info", "/p/team/endpoints/y/info"),
    ("/endpoint%73/x/endpoints/y/podium-x", "/endpoints/y/podium-x"),
    ("/endpoint%73/x/a%2Fb", "/a%2Fb"),
]


@pytest.mark.parametrize("path", REFUSED)
def test_internal_routes_are_refused_with_404(
    setup: tuple[RunningGateway, Replica], path: str
) -> None:
    gw, replica = setup
    before = replica.app.requests
    with gw.client() as client:
        r = client.get(path)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "no such path" in r.json()["detail"]
    assert replica.app.requests == before  # never forwarded


@pytest.mark.parametrize("path", FORWARDED)
def test_public_routes_that_look_alike_are_forwarded(
    setup: tuple[RunningGateway, Replica], path: str
) -> None:
    gw, replica = setup
    before = replica.app.requests
    with gw.client() as client:
        r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/" + path.split("/", 3)[3]
    assert replica.app.requests == before + 1


@pytest.mark.parametrize(("path", "forwarded"), ENCODED_PREFIX)
def test_encoded_prefix_forwards_the_path_after_the_name(
    setup: tuple[RunningGateway, Replica], path: str, forwarded: str
) -> None:
    gw, replica = setup
    before = replica.app.requests
    with gw.client() as client:
        r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.json()["raw_path"] == forwarded
    assert replica.app.requests == before + 1
