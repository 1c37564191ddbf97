"""Access control end to end against a real `podium up`: the credentials it makes, tokens
under load, public and protected endpoints, the Host check, `--no-auth` on loopback only.

Needs the API's token routes and the gateway's access stage (issue 11's other halves)."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.client import PodiumClient, Unauthenticated
from tests.support.models import write_python_bundle
from tests.support.server import (
    ServerProcess,
    free_port,
    run_load,
    running_server,
    wait_running,
)

# The module's `server` runs on SQLite and again on PostgreSQL (tests/integration/conftest.py).
DATABASES = ("sqlite", "postgres")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_env: dict[str, str]
) -> Iterator[ServerProcess]:
    """A fresh home; one protected (`guarded`) and one public (`open`) echo endpoint."""
    tmp = tmp_path_factory.mktemp("access")
    with running_server(tmp / "home", **database_env) as s, s.client() as c:
        c.push_model(write_python_bundle(tmp / "echo"), "echo", framework="python")
        c.deploy({"name": "guarded", "model": "echo", "framework": "python"})
        c.deploy({"name": "open", "model": "echo", "framework": "python", "visibility": "public"})
        wait_running(c, "guarded")
        wait_running(c, "open")
        yield s


def test_a_fresh_home_gets_private_credentials_that_the_cli_and_sdk_use_unasked(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = server.credentials_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text()
    assert token.startswith("pod_") and token.endswith("\n")
    log = server.log_path.read_text(errors="replace")
    assert str(path) in log  # the start-up line says where it is ...
    assert token.strip() not in log  # ... never what it is

    who = server.cli("whoami").stdout  # PODIUM_HOME only: no --token, no PODIUM_TOKEN
    assert "podium-up-admin" in who and "admin" in who

    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    monkeypatch.setenv("PODIUM_HOME", str(server.home))
    with PodiumClient(server.url) as sdk:
        assert sdk.whoami().name == "podium-up-admin"
        assert {"guarded", "open"} <= {ep.name for ep in sdk.endpoints()}


def test_no_token_is_401_on_the_api_and_a_protected_endpoint_but_not_a_public_one(
    server: ServerProcess,
) -> None:
    api = httpx.get(f"{server.url}/api/v1/endpoints")
    assert api.status_code == 401
    assert api.headers["www-authenticate"].startswith("Bearer")
    assert api.headers["content-type"] == "application/problem+json"
    guarded = httpx.post(f"{server.url}/endpoints/guarded/", json={"inputs": 1})
    assert guarded.status_code == 401
    assert guarded.headers["www-authenticate"].startswith("Bearer")
    public = httpx.post(f"{server.url}/endpoints/open/", json={"inputs": 1})
    assert public.status_code == 200, public.text
    assert public.json() == {"version": 1, "echo": 1}
    health = httpx.get(f"{server.url}/api/v1/health")  # liveness stays open
    assert health.status_code == 200
    unknown = "pod_000000000000_" + "x" * 43
    with PodiumClient(server.url, token=unknown) as bad, pytest.raises(Unauthenticated):
        bad.endpoints()


def test_project_paths_go_to_the_gateway(server: ServerProcess) -> None:
    """`/p/{project}/endpoints/…` is the gateway's (an endpoint it does not know), not the
    API's unknown route."""
    r = httpx.post(f"{server.url}/p/team/endpoints/ghost/", json={}, headers=server.headers)
    assert r.status_code == 404, r.text
    assert "ghost" in r.json()["detail"]


def test_an_unknown_host_is_421_on_every_path(server: ServerProcess) -> None:
    paths = ("/api/v1/health", "/endpoints/open/", "/p/team/endpoints/x/", "/v1/models", "/")
    for path in (*paths, "/metrics"):
        r = httpx.get(f"{server.url}{path}", headers={"host": "rebound.example:8000"})
        assert r.status_code == 421, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["title"] == "Misdirected Request" and problem["field"] == "host"
        assert "rebound.example" in problem["detail"]
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "[::1]"):
        r = httpx.get(f"{server.url}/api/v1/health", headers={"host": host})
        assert r.status_code == 200, host


def test_a_token_revoked_under_load_is_refused_from_then_on(server: ServerProcess) -> None:
    with server.client() as admin:
        made = admin.create_token("loader", ["invoke"])
    revoked_at: list[float] = []

    def revoke(started: float) -> None:
        time.sleep(max(0.0, started + 3 - time.monotonic()))
        sent = time.monotonic()
        with server.client() as admin:
            admin.revoke_token(made.id)
        revoked_at.extend((sent, time.monotonic()))

    report = run_load(
        f"{server.url}/endpoints/guarded/",
        {"inputs": "ping"},
        seconds=7,
        clients=4,
        during=revoke,
        headers={"authorization": f"Bearer {made.token}"},
    )
    assert len(revoked_at) == 2, "the revoke did not happen during the load"
    revoke_sent, revoke_done = revoked_at
    statuses = {c.status for c in report.calls}
    assert statuses <= {200, 401}, [c for c in report.calls if c.status not in (200, 401)][:5]
    before = [c for c in report.calls if c.sent < revoke_sent]
    late = [c for c in report.calls if c.sent > revoke_done + 1.0]
    assert before and all(c.status == 200 for c in before)  # nothing refused before it
    assert late, "no request was sent a second after the revoke"
    assert all(c.status == 401 for c in late), [c for c in late if c.status != 401][:5]


def test_no_auth_is_refused_on_a_non_loopback_host(tmp_path: Path) -> None:
    home, port = tmp_path / "home", str(free_port())
    result = subprocess.run(
        [sys.executable, "-m", "podium", "up", "--no-auth", "--host", "0.0.0.0", "--port", port],
        env=ServerProcess(home, 0).env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--no-auth" in lines[0] and "loopback" in lines[0]
    assert not (home / "credentials").exists()  # nothing was started


def test_no_auth_on_loopback_needs_no_token_and_warns(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", free_port(), no_auth=True)
    server.start()
    try:
        assert httpx.get(f"{server.url}/api/v1/endpoints").status_code == 200
        assert not server.credentials_path.exists()
        assert "AUTHENTICATION IS OFF" in server.log_path.read_text(errors="replace")
    finally:
        server.stop()
