"""`podium server --roles`: a process builds only its roles' parts, answers another role's
paths 404 problem+json, and a split on SQLite is refused in one line before anything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from podium.cli.main import app
from podium.core.settings import Role, Settings
from podium.server.app import Podium
from tests.support.db import postgres_shared_url

__all__ = ["postgres_shared_url"]


@pytest.fixture
def make(tmp_path: Path, postgres_shared_url: str) -> Iterator[Callable[..., Podium]]:
    built: list[Podium] = []

    def build(*roles: Role) -> Podium:
        settings = Settings(
            home=tmp_path / "home", database_url=postgres_shared_url, roles=frozenset(roles)
        )
        podium = Podium(settings)
        built.append(podium)
        return podium

    yield build
    for podium in built:
        podium.db.dispose()


def _get(podium: Podium, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=podium)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.get(path)

    return asyncio.run(call())


@pytest.mark.postgres
def test_a_process_answers_only_its_roles_paths(make: Callable[..., Podium]) -> None:
    api_only = make(Role.API)
    assert api_only.gateway is None and api_only.controller is None
    r = _get(api_only, "/endpoints/iris/predict")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "gateway role" in r.json()["detail"]
    assert _get(api_only, "/api/v1/health").status_code == 200

    gateway_only = make(Role.GATEWAY)
    assert gateway_only.api is None and gateway_only.controller is None
    assert gateway_only.gateway is not None
    for path in ("/api/v1/health", "/", "/v1/batches"):
        r = _get(gateway_only, path)
        assert r.status_code == 404, path
        assert "api role" in r.json()["detail"]

    controller_only = make(Role.CONTROLLER)
    assert controller_only.controller is not None and controller_only.gateway is None
    assert not controller_only.controller.lease.sole  # PostgreSQL: a candidate, not alone
    assert _get(controller_only, "/api/v1/health").status_code == 404


def test_a_split_on_sqlite_is_refused_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["server", "--roles", "api,gateway"],
        env={"PODIUM_HOME": str(tmp_path / "home"), "PODIUM_DATABASE_URL": ""},
    )
    assert result.exit_code == 2
    assert "needs PostgreSQL" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "home").exists()  # refused before anything was touched


def test_unknown_roles_are_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["server", "--roles", "api,scheduler"], env={"PODIUM_HOME": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "roles" in result.output
