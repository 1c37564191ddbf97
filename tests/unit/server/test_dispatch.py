"""The server's dispatcher in-process: the Host check before every part, `/p/` paths to
the gateway, and the token directory the API and the gateway share."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.core.access import Principal
from podium.server.credentials import read_token_file
from tests.support.inproc import InProcessPodium, Served, serving


@pytest.fixture(scope="module")
def _served() -> Iterator[Served]:
    with serving() as served:
        yield served


@pytest.fixture
def podium(_served: Served, tmp_path: Path) -> Iterator[InProcessPodium]:
    yield _served.fresh(tmp_path / "home")
    _served.close_current()


def test_a_foreign_host_is_refused_before_any_part_runs(podium: InProcessPodium) -> None:
    for path in ("/api/v1/health", "/endpoints/x/", "/p/team/endpoints/x/", "/v1/models"):
        r = httpx.get(podium.url + path, headers={"host": "attacker.example"})
        assert r.status_code == 421, path
        assert r.json()["field"] == "host"
    assert httpx.get(podium.url + "/api/v1/health").status_code == 200  # 127.0.0.1:PORT


def test_project_paths_are_the_gateways(podium: InProcessPodium) -> None:
    api_404 = httpx.get(podium.url + "/q/team/endpoints/x/", headers=podium.headers)
    gateway_404 = httpx.post(podium.url + "/p/team/endpoints/x/", headers=podium.headers)
    assert api_404.status_code == gateway_404.status_code == 404
    assert api_404.json()["detail"] != gateway_404.json()["detail"]


def test_the_fresh_home_has_an_admin_token_the_server_knows(podium: InProcessPodium) -> None:
    token = read_token_file(podium.settings.credentials_path)
    assert token is not None and token == podium.token
    who = podium.podium.tokens.authenticate(token)  # the one directory API and gateway use
    assert isinstance(who, Principal) and who.is_admin
    assert podium.podium.api.state.podium.tokens is podium.podium.tokens


def test_metrics_needs_a_read_token_for_every_project(podium: InProcessPodium) -> None:
    """`/metrics` names every project's endpoints: no token 401, a token bound to projects
    (or without `read`) 403, a `read` token for every project or an admin 200."""

    def make(name: str, scopes: list[str], projects: list[str] | None) -> str:
        r = httpx.post(
            podium.url + "/api/v1/tokens",
            json={"name": name, "scopes": scopes, "projects": projects},
            headers=podium.headers,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def scrape(token: str | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.get(podium.url + "/metrics", headers=headers)

    bound_read = make("bound-read", ["read"], ["default"])
    all_invoke = make("all-invoke", ["invoke"], None)
    all_read = make("all-read", ["read"], None)
    for who, status in (
        (None, 401),
        ("pod_000000000000_" + "x" * 43, 401),
        (bound_read, 403),
        (all_invoke, 403),
        (all_read, 200),
        (podium.token, 200),  # admin of every project
    ):
        r = scrape(who)
        assert r.status_code == status, (who, r.text)
        if status != 200:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["status"] == status
        else:
            assert "podium_gateway" in r.text
    assert scrape(None).headers["www-authenticate"] == 'Bearer realm="podium"'
    assert "every project" in scrape(bound_read).json()["detail"]


def test_metrics_is_open_with_auth_off(podium: InProcessPodium) -> None:
    server = podium.podium
    server.settings = dataclasses.replace(server.settings, auth=False)
    r = httpx.get(podium.url + "/metrics")
    assert r.status_code == 200 and "podium_gateway" in r.text


def test_answers_the_server_makes_itself_carry_the_safe_headers(podium: InProcessPodium) -> None:
    """The 421, `/metrics` (and its refusal) and the gateway's problems: never sniffed,
    framed or allowed to load anything (a replica's own answers pass as they came)."""
    answers = [
        httpx.get(podium.url + "/api/v1/health", headers={"host": "evil.example"}),
        httpx.get(podium.url + "/metrics"),
        httpx.get(podium.url + "/metrics", headers=podium.headers),
        httpx.post(podium.url + "/endpoints/nowhere/", headers=podium.headers, json={}),
    ]
    assert [a.status_code for a in answers] == [421, 401, 200, 404]
    for a in answers:
        assert a.headers["x-content-type-options"] == "nosniff"
        assert a.headers["x-frame-options"] == "DENY"
        assert a.headers["content-security-policy"].startswith("default-src 'none'")
