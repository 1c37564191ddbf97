"""Security headers on every answer of the API; no CORS, ever."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from podium.api.access import PUBLIC
from podium.api.headers import STRICT_CSP

FIXED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize(
    ("method", "path", "status", "auth"),
    [
        ("GET", "/api/v1/health", 200, False),
        ("GET", "/api/v1/endpoints", 200, True),
        ("GET", "/api/v1/endpoints", 401, False),
        ("GET", "/api/v1/no-such-route", 404, True),
        ("POST", "/api/v1/endpoints", 422, True),
        ("GET", "/api/v1/openapi.json", 200, False),
    ],
)
def test_every_answer_carries_the_security_headers(
    client: TestClient, method: str, path: str, status: int, auth: bool
) -> None:
    headers = {} if auth else {"Authorization": ""}
    r = client.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert r.status_code == status
    for name, value in FIXED.items():
        assert r.headers.get_list(name) == [value], name
    assert r.headers.get_list("content-security-policy") == [STRICT_CSP]


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/docs/oauth2-redirect"])
def test_the_docs_page_may_run_swagger_ui_and_nothing_foreign(
    client: TestClient, path: str
) -> None:
    page = client.get(path)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert not re.search(r"https?:|\*", csp)  # no other host, anywhere
    # Scripts: files of this origin, and the page's own inline script by its hash only.
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert inline
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    ]
    assert directives["script-src"].split() == ["'self'", *hashes]
    assets = re.findall(r"""<(?:script|link)[^>]*(?:src|href)\s*=\s*['"]([^'"]+)['"]""", page.text)
    assert all(a.startswith("/api/v1/docs-assets/") for a in assets), assets
    assert directives["connect-src"] == "'self'"  # the page fetches openapi.json
    for name, value in FIXED.items():
        assert page.headers[name] == value


def test_a_cors_preflight_from_another_origin_is_not_allowed(client: TestClient) -> None:
    r = client.options(
        "/api/v1/endpoints",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert not any(h.lower().startswith("access-control-") for h in r.headers)
    r = client.get("/api/v1/endpoints", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_a_server_error_carries_them_too(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("bug")

    app.add_api_route("/api/v1/boom", boom, dependencies=[PUBLIC])
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/boom")
    assert r.status_code == 500
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["content-security-policy"] == STRICT_CSP
