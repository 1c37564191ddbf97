"""Models from `hf://` refs (offline, from a local hub cache) and a PostgreSQL-backed server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.hf_cache import add_to_hf_cache
from tests.support.models import train_iris_skops, write_python_bundle
from tests.support.server import ServerProcess, free_port, running_server, wait_running

SAMPLE = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}


def test_deploy_from_hf_ref_offline(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf-home"
    commit = add_to_hf_cache(
        hf_home / "hub", "acme/echo", write_python_bundle(tmp_path / "echo", version=7)
    )
    with running_server(tmp_path / "podium", HF_HOME=str(hf_home)) as server, server.client() as c:
        c.deploy({"name": "hf-echo", "model": "hf://acme/echo", "framework": "python"})
        wait_running(c, "hf-echo")
        assert c.invoke("hf-echo", {"inputs": "hi"}) == {"version": 7, "echo": "hi"}
        c.deploy({"name": "hf-pinned", "model": f"hf://acme/echo@{commit}", "framework": "python"})
        wait_running(c, "hf-pinned")
        c.deploy({"name": "hf-missing", "model": "hf://acme/absent", "framework": "python"})
        ep = c.wait_for("hf-missing", {"failed"}, timeout=60)  # type: ignore[arg-type]
        assert ep.status_reason and "acme/absent" in ep.status_reason


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"podium_it_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432: {e}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_server_on_postgresql_deploys_and_survives_restart(
    tmp_path: Path, postgres_url: str
) -> None:
    server = ServerProcess(tmp_path / "podium", free_port(), {"PODIUM_DATABASE_URL": postgres_url})
    server.start()
    try:
        with server.client() as c:
            c.push_model(train_iris_skops(tmp_path / "iris"), "iris", framework="sklearn")
            c.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
            wait_running(c, "iris")
            answer = c.invoke("iris", SAMPLE)
            n_events = len(c.events("iris"))
        server.stop()
        server.start()
        with server.client() as c:
            wait_running(c, "iris")
            assert c.invoke("iris", SAMPLE) == answer
            assert len(c.events("iris")) > n_events
    finally:
        server.stop()
