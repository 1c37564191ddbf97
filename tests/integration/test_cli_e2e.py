"""End to end through the `podium` CLI against a real server and real replica processes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from podium.core.errors import NotFound
from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess, wait_until

SAMPLE = '{"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'


def status(server: ServerProcess, name: str) -> str:
    with server.client() as c:
        return c.endpoint(name).status.value


def test_push_deploy_invoke_ls_pause_resume_rm(server: ServerProcess, tmp_path: Path) -> None:
    model = train_iris_skops(tmp_path / "iris")
    out = server.cli("models", "push", str(model), "--name", "flowers", "--framework", "sklearn")
    assert "flowers:1" in out.stdout

    server.cli("deploy", "flowers", "--model", "flowers", "--framework", "sklearn", "--wait")
    answer = json.loads(server.cli("invoke", "flowers", "--json", SAMPLE).stdout)
    assert isinstance(answer, list) and len(answer) == 2
    assert answer[0] != answer[1]  # a setosa and a virginica sample

    listing = server.cli("ls").stdout
    assert "flowers" in listing and "running" in listing and "1/1" in listing

    server.cli("pause", "flowers")
    wait_until(lambda: status(server, "flowers") == "paused", what="paused")
    resp = httpx.post(f"{server.url}/endpoints/flowers/", content=SAMPLE)
    assert resp.status_code == 503
    assert "paused" in resp.json()["detail"]

    server.cli("resume", "flowers")
    wait_until(lambda: status(server, "flowers") == "running", what="running again")
    assert json.loads(server.cli("invoke", "flowers", "--json", SAMPLE).stdout) == answer

    events = server.cli("events", "flowers").stdout
    assert "replica_ready" in events or "ready after" in events

    server.cli("rm", "flowers")

    def gone() -> bool:
        with server.client() as c:
            try:
                c.endpoint("flowers")
            except NotFound:
                return True
        return False

    wait_until(gone, what="endpoint removed")
    assert httpx.post(f"{server.url}/endpoints/flowers/", content=SAMPLE).status_code == 404
    # The model is no longer used, so it can be removed too.
    server.cli("models", "rm", "flowers:1")


def test_cli_errors_are_one_clear_line(server: ServerProcess) -> None:
    res = server.cli("deploy", "x", "--model", "nope", "--framework", "sklearn", check=False)
    assert res.returncode != 0
    assert res.stderr.strip().startswith("error:")
    assert "Traceback" not in res.stderr

    res = server.cli("describe", "no-such-endpoint", check=False)
    assert res.returncode == 1
    assert "not found" in res.stderr


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "ok-name", "model": "m", "framework": "sklearn"}, "model"),
        ({"name": "Bad_Name", "model": "iris", "framework": "sklearn"}, "name"),
        (
            {
                "name": "okay",
                "model": "iris",
                "framework": "sklearn",
                "scaling": {"min_replicas": 3, "max_replicas": 1},
            },
            "scaling",
        ),
        ({"name": "okay", "model": "iris", "framework": "nope"}, "framework"),
    ],
)
def test_invalid_spec_names_the_field(server: ServerProcess, spec: dict, field: str) -> None:
    resp = httpx.post(f"{server.url}/api/v1/endpoints", json=spec)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["field"] == field
