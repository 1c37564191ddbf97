"""The browser's session: a token traded for an HttpOnly cookie, and the CSRF rule on
every request that changes something."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.unit.api.conftest import push, spec


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A client with no Authorization header: only what cookies it holds."""
    with TestClient(app) as c:
        yield c


def _set_cookies(response: object) -> dict[str, str]:
    """Each Set-Cookie line by cookie name, lower-cased."""
    lines = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return {line.split("=", 1)[0]: line.lower() for line in lines}


def test_login_sets_an_httponly_strict_cookie(browser: TestClient, admin_token: str) -> None:
    r = browser.post("/api/v1/session", json={"token": admin_token})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "test-admin"
    cookies = _set_cookies(r)
    session, csrf = cookies["podium_session"], cookies["podium_csrf"]
    assert "httponly" in session
    assert "samesite=strict" in session
    assert "path=/" in session
    assert "secure" not in session  # plain http
    assert "httponly" not in csrf  # the page reads it to echo it
    assert "samesite=strict" in csrf
    assert admin_token not in r.text


def test_login_over_https_sets_secure_cookies(app: FastAPI, admin_token: str) -> None:
    with TestClient(app, base_url="https://testserver") as c:
        r = c.post("/api/v1/session", json={"token": admin_token})
    assert r.status_code == 200
    assert all("; secure" in line for line in _set_cookies(r).values())


def test_a_bad_token_gets_no_session(browser: TestClient) -> None:
    r = browser.post("/api/v1/session", json={"token": "pod_000000000000_" + "a" * 43})
    assert r.status_code == 401
    assert r.json()["field"] == "token"
    assert "set-cookie" not in r.headers


def test_the_cookie_reads_and_writes_only_with_the_csrf_header(
    browser: TestClient, admin_token: str, admin_headers: dict[str, str]
) -> None:
    pushed = browser.post(
        "/api/v1/models/iris/versions",
        params={"filename": "m.skops", "framework": "sklearn"},
        content=b"v1",
        headers={**admin_headers, "content-type": "application/octet-stream"},
    )
    assert pushed.status_code == 201, pushed.text
    assert browser.get("/api/v1/endpoints").status_code == 401  # not logged in yet
    assert browser.post("/api/v1/session", json={"token": admin_token}).status_code == 200
    assert browser.get("/api/v1/endpoints").status_code == 200  # reads need no CSRF header

    r = browser.post("/api/v1/endpoints", json=spec())
    assert r.status_code == 403
    assert "CSRF" in r.json()["detail"]
    assert r.json()["field"] == "X-CSRF-Token"
    r = browser.post("/api/v1/endpoints", json=spec(), headers={"X-CSRF-Token": "guess"})
    assert r.status_code == 403

    csrf = browser.cookies["podium_csrf"]
    r = browser.post("/api/v1/endpoints", json=spec(), headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    r = browser.delete("/api/v1/endpoints/iris-ep")
    assert r.status_code == 403
    r = browser.delete("/api/v1/endpoints/iris-ep", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 202


def test_bearer_requests_need_no_csrf_header(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201


def test_logout_clears_both_cookies(browser: TestClient, admin_token: str) -> None:
    assert browser.post("/api/v1/session", json={"token": admin_token}).status_code == 200
    r = browser.delete("/api/v1/session")
    assert r.status_code == 204
    cookies = _set_cookies(r)
    assert set(cookies) == {"podium_session", "podium_csrf"}
    assert all("max-age=0" in line for line in cookies.values())
    assert browser.get("/api/v1/endpoints").status_code == 401


@pytest.mark.parametrize("given", ["caf\xe9".encode("latin-1"), "\u20ac".encode()])
def test_a_non_ascii_csrf_header_is_a_403_not_a_500(
    browser: TestClient, admin_token: str, given: bytes
) -> None:
    """Header values reach the app as latin-1 text; a non-ASCII one is a mismatch."""
    assert browser.post("/api/v1/session", json={"token": admin_token}).status_code == 200
    r = browser.post("/api/v1/endpoints", json=spec(), headers={"X-CSRF-Token": given})
    assert r.status_code == 403, r.text
    assert r.json()["field"] == "X-CSRF-Token"
