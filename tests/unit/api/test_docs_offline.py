"""The API docs page works offline: every asset it loads is served by Podium itself."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_the_docs_page_loads_only_local_assets(client: TestClient) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert [u for u in urls if "://" in u or u.startswith("//")] == []

    assets = {u for u in urls if u.endswith((".js", ".css"))}
    assert {u.rsplit(".", 1)[1] for u in assets} == {"js", "css"}
    for url in assets:
        answer = client.get(url)
        assert answer.status_code == 200, url
        kind = "javascript" if url.endswith(".js") else "css"
        assert kind in answer.headers["content-type"], (url, answer.headers["content-type"])
        assert len(answer.content) > 10_000, url  # the real Swagger UI, not a stub
    assert client.get("/api/v1/openapi.json").status_code == 200
