"""A replica's internal routes (`/metrics`, `/health/…`, `/podium/…`) are Podium's own: the
gateway answers 404 for them and the replica never sees the request. Public routes that
merely look alike (`/v2/health/live`, `/healthz`, `/metrics-x`) are still forwarded."""

from __future__ import annotations

import pytest

from tests.unit.gateway.conftest import Replica, RunningGateway, Servers, endpoint


@pytest.fixture(scope="module")
def setup(module_servers: Servers) -> tuple[RunningGateway, Replica]:
    (replica,) = module_servers.replicas(1)
    running = module_servers.gateway()
    running.publish(endpoint("echo", replica.route))
    return running, replica


REFUSED = [
    "/endpoints/echo/metrics",
    "/endpoints/echo/health/live?hung_after_s=1",
    "/endpoints/echo/health/ready",
    "/endpoints/echo/podium/info",
    "/endpoints/echo/%6detrics",  # the replica would decode it to /metrics
    "/endpoints/echo/health%2Flive",  # likewise /health/live
    "/endpoints/ghost/podium/info",  # unknown endpoint: the same 404
]

FORWARDED = [
    "/endpoints/echo/v2/health/live",
    "/endpoints/echo/healthz",
    "/endpoints/echo/metrics-x",
    "/endpoints/echo/v1/podium/info",
    "/endpoints/echo/",
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
