"""The dashboard's files as the server serves them: the page, its modules, its headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from podium.web.app import CSP, STATIC, create_web, is_web_path, start_modules

IMPORT = re.compile(r"""(?:import|from)\s*(?:\(\s*|[\w{}\s,*]+from\s*)?["'](\.{1,2}/[^"']+)["']""")


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_web())


def test_index_is_the_page_with_a_strict_policy(client: TestClient) -> None:
    res = client.get("/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/js/main.js">' in res.text
    assert res.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    assert res.headers["x-frame-options"] == "DENY"
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["cache-control"] == "no-cache"


def test_modules_are_served_as_javascript_and_revalidated(client: TestClient) -> None:
    res = client.get("/ui/js/main.js")
    assert res.status_code == 200
    kind = res.headers["content-type"].split(";")[0]
    assert kind in {"text/javascript", "application/javascript"}
    again = client.get("/ui/js/main.js", headers={"if-none-match": res.headers["etag"]})
    assert again.status_code == 304


def test_no_file_outside_the_static_folder(client: TestClient) -> None:
    assert client.get("/ui/../app.py").status_code == 404
    assert client.get("/ui/%2e%2e/app.py").status_code == 404
    assert client.get("/ui/nothing.js").status_code == 404
    assert client.get("/ui/nothing.js").headers["content-security-policy"] == CSP


def test_large_files_go_compressed(client: TestClient) -> None:
    res = client.get("/ui/vendor/uplot.js", headers={"accept-encoding": "gzip"})
    assert res.headers.get("content-encoding") == "gzip"


def test_every_relative_import_names_a_file_that_exists() -> None:
    """A typo in an import path breaks the whole page in the browser; catch it here."""
    modules = sorted(STATIC.rglob("*.js"))
    assert len(modules) > 10
    for module in modules:
        for target in IMPORT.findall(module.read_text(encoding="utf-8")):
            assert (module.parent / target).resolve().is_file(), f"{module}: {target}"


def test_the_server_hands_these_paths_to_the_dashboard() -> None:
    assert is_web_path("/") and is_web_path("/ui/app.css") and is_web_path("/favicon.ico")
    assert not is_web_path("/api/v1/health") and not is_web_path("/endpoints")
    assert not is_web_path("/uix") and Path(STATIC / "index.html").is_file()


def test_the_settings_tab_knows_which_fields_make_a_new_revision() -> None:
    """The Settings tab's diff says "new revision" or "in place" from its own copy of
    `REVISION_FIELDS`; this keeps the copy equal to the rule the server applies."""
    from podium.core.spec import REVISION_FIELDS

    source = (STATIC / "js/pages/endpoint/settings.js").read_text(encoding="utf-8")
    block = re.search(r"REVISION_FIELDS = new Set\(\[(.*?)\]\)", source, re.DOTALL)
    assert block is not None
    assert set(re.findall(r'"(\w+)"', block.group(1))) == set(REVISION_FIELDS)


def test_the_page_preloads_what_a_visit_starts_with(client: TestClient) -> None:
    """The shell and the Endpoints page are preloaded (fetched at once, not import by
    import); the other pages, and the chart library only they use, load when shown."""
    page = client.get("/").text
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/ui/([^"]+)" />', page))
    assert {"js/main.js", "js/api.js", "js/ui.js", "js/pages/endpoints.js"} <= preloaded
    assert "vendor/preact-htm.js" in preloaded
    assert "vendor/uplot.js" not in preloaded and "js/pages/endpoint.js" not in preloaded
    assert preloaded == {p.relative_to(STATIC.resolve()).as_posix() for p in start_modules()}
    assert "<!-- modulepreload -->" not in page


def test_only_reads_and_only_the_files_it_has(client: TestClient) -> None:
    assert client.post("/ui/js/main.js").status_code == 405
    plain = {"accept-encoding": "identity"}
    head = client.head("/ui/js/main.js", headers=plain)
    assert head.status_code == 200 and head.content == b""
    body = client.get("/ui/js/main.js", headers=plain).content
    assert int(head.headers["content-length"]) == len(body)
    assert client.get("/ui/js").status_code == 404  # a folder is not a file
    assert client.get("/favicon.ico").headers["content-type"] == "image/svg+xml"
