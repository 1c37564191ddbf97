"""End to end through the `podium` CLI against a real server and real replica processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
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
    resp = httpx.post(f"{server.url}/endpoints/flowers/", headers=server.headers, content=SAMPLE)
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
    assert (
        httpx.post(
            f"{server.url}/endpoints/flowers/", headers=server.headers, content=SAMPLE
        ).status_code
        == 404
    )
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


# The module's `server` runs on SQLite and again on PostgreSQL (tests/integration/conftest.py).
DATABASES = ("sqlite", "postgres")


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
            "scaling.max_replicas",
        ),
        ({"name": "okay", "model": "iris", "framework": "nope"}, "framework"),
    ],
)
def test_invalid_spec_names_the_field(server: ServerProcess, spec: dict, field: str) -> None:
    resp = httpx.post(f"{server.url}/api/v1/endpoints", headers=server.headers, json=spec)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["field"] == field


def test_ls_filters_scale_describe_and_logs_follow(server: ServerProcess, tmp_path: Path) -> None:
    """`ls` filters, `scale`, `describe` and `logs -f` against the real API and controller."""
    model = train_iris_skops(tmp_path / "iris")
    server.cli("models", "push", str(model), "--name", "petals", "--framework", "sklearn")
    server.cli("deploy", "petals", "-m", "petals", "-l", "team=ml", "--wait")
    server.cli("deploy", "sepals", "-m", "petals", "-l", "team=web", "--min-replicas", "0")

    def ls(*filters: str) -> list[str]:
        lines = server.cli("ls", *filters).stdout.splitlines()
        return [line.split()[0] for line in lines[1:]] if len(lines) > 1 else lines

    assert ls("--status", "running") == ["petals"]
    assert ls("--label", "team=web", "--name", "als") == ["sepals"]
    assert ls("-l", "team=web", "-s", "running") == ["no endpoints match"]

    follow = subprocess.Popen(
        [sys.executable, "-m", "podium", "logs", "petals", "-f"],
        env=server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    followed: list[str] = []
    reader = threading.Thread(target=lambda: followed.extend(iter(follow.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: any(" ready on http://" in line for line in followed), what="tail")
        [first] = {line.split("]")[0].lstrip("[") for line in followed}

        out = server.cli("scale", "petals", "--min", "2", "--max", "2").stdout
        assert out == "endpoint petals scales 2..2: status running\n"

        def two_ready() -> bool:
            with server.client() as c:
                return c.endpoint("petals").ready_replicas == 2

        wait_until(two_ready, timeout=120, what="a second replica")
        # The follow picks up the new replica's log as it is written.
        wait_until(
            lambda: len({line.split("]")[0] for line in followed if " ready on " in line}) == 2,
            what="the second replica's log in `logs -f`",
        )
        assert all(line.startswith("[petals-r1-") for line in followed), followed

        described = server.cli("describe", "petals").stdout
        rows = [line.split() for line in described.splitlines() if line.startswith("petals-r1-")]
        assert len(rows) == 2 and all("ready" in row for row in rows), described
        assert any(row[0] == first for row in rows)
        assert "scale bounds set to min 2, max 2 by user" in described
        assert "min_replicas: 2" in described and "team: ml" in described  # the spec

        server.cli("rm", "petals")
        assert follow.wait(timeout=120) == 0  # the stream ends once the endpoint is gone
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
        reader.join(timeout=10)
    server.cli("rm", "sepals")


def test_tokens_create_ls_whoami_revoke(server: ServerProcess) -> None:
    """The admin token from `podium up`'s credentials makes a token; the new one works at
    once with its own scopes, and not at all once revoked."""
    made = server.cli("tokens", "create", "ci-bot", "--scope", "read", "--expires-in", "1d")
    token = made.stdout.strip()
    assert token.startswith("pod_") and "\n" not in token  # stdout: the token alone
    assert "shown only this once" in made.stderr
    token_id = token.split("_")[1]

    listing = server.cli("tokens", "ls").stdout
    assert "ci-bot" in listing and token_id in listing and token not in listing
    who = server.cli("whoami", token=token).stdout
    assert "ci-bot" in who and "read" in who and "default" in who
    denied = server.cli("tokens", "ls", token=token, check=False)
    assert denied.returncode == 1 and "admin" in denied.stderr

    assert "revoked" in server.cli("tokens", "revoke", token_id).stdout
    refused = server.cli("whoami", token=token, check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error:") and refused.stderr.count("\n") == 1
    assert "ci-bot" not in server.cli("tokens", "ls").stdout
    assert "ci-bot" in server.cli("tokens", "ls", "--all").stdout
    audit = server.cli("audit", "--action", "token.revoke").stdout
    assert "token.revoke" in audit and token_id in audit and "podium-up-admin" in audit
