"""Container endpoints (`framework: container`, or a preset with a `container` block) at the
API: refused at once with a 422 naming `container` where the server cannot run them (no
container engine on this node, or the Ray backend), and their block round-trips through
create, update and the endpoint's detail. Over the real API; the engine is the machine's
podman (`make test` installs it), a missing one is an engine setting naming a program that
does not exist, and a "newly installed" one is a real script."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.api.services.checks import EngineLookup, check_container
from podium.core.errors import Invalid, LoadError
from podium.core.settings import BackendKind, ContainerSettings, Settings
from podium.core.spec import EndpointCreate
from tests.unit.api.conftest import push

EP = "/api/v1/endpoints"
IMAGE = "localhost/podium-test/busybox:1"
BLOCK: dict[str, Any] = {
    "image": IMAGE,
    "command": ["/bin/sh", "-c"],
    "args": ["exec httpd -f -p {port}"],
    "port": 9000,
    "health_route": "/health",
    "env": {"MODE": "test"},
    "model_mount": "/models",
    "pull_policy": "never",
    "registry_secret": None,
}


def container_spec(name: str = "box", **block: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": "iris",
        "framework": "container",
        "container": {"image": IMAGE, **block},
        "scaling": {"min_replicas": 0},
    }


def _client_with(ctx: ApiContext, settings: Settings, headers: dict[str, str]) -> TestClient:
    return TestClient(create_api(replace(ctx, settings=settings)), headers=headers)


@pytest.fixture
def no_engine(
    ctx: ApiContext, tmp_path: Path, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    """The API of a server whose engine setting names a program that is not there."""
    missing = ContainerSettings(engine=str(tmp_path / "nowhere" / "podman"))
    settings = Settings(home=tmp_path / "home", port=8123, containers=missing)
    with _client_with(ctx, settings, admin_headers) as c:
        yield c


@pytest.fixture
def on_ray(ctx: ApiContext, tmp_path: Path, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "home", port=8123, backend=BackendKind.RAY)
    with _client_with(ctx, settings, admin_headers) as c:
        yield c


def _refused(r: Any, *words: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["field"] == "container", body
    for word in words:
        assert word in body["detail"], body


def test_no_engine_refuses_a_container_deploy_at_once_naming_container(
    no_engine: TestClient, tmp_path: Path
) -> None:
    assert push(no_engine, "iris", b"v1").status_code == 201
    r = no_engine.post(EP, json=container_spec())
    _refused(r, "cannot run container endpoints", str(tmp_path / "nowhere" / "podman"), "not")
    assert no_engine.get(f"{EP}/box").status_code == 404  # nothing written
    # a preset run from its image needs the engine too
    preset = {"name": "gen", "model": "iris", "framework": "tgi", "container": {}}
    _refused(no_engine.post(EP, json=preset), "cannot run container endpoints")
    # what needs no engine deploys; an update that adds a block is refused
    plain = {"name": "gen", "model": "iris", "framework": "tgi"}
    assert no_engine.post(EP, json=plain).status_code == 201
    _refused(no_engine.patch(f"{EP}/gen", json={"container": {"image": IMAGE}}))
    assert no_engine.get(f"{EP}/gen").json()["spec"]["container"] is None


def test_the_ray_backend_refuses_a_container_deploy_saying_where_it_runs(
    on_ray: TestClient,
) -> None:
    assert push(on_ray, "iris", b"v1").status_code == 201
    _refused(on_ray.post(EP, json=container_spec()), "ray backend", "local backend")


def test_the_container_block_round_trips_through_create_update_and_detail(
    client: TestClient,
) -> None:
    assert push(client, "iris", b"v1").status_code == 201
    created = client.post(EP, json=container_spec(**BLOCK))
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["container"] == BLOCK
    detail = client.get(f"{EP}/box").json()
    assert detail["spec"]["framework"] == "container"
    assert detail["spec"]["container"] == BLOCK
    assert detail["revision"] == 1

    # the defaults, as the detail shows them
    assert client.post(EP, json=container_spec("plain")).status_code == 201
    assert client.get(f"{EP}/plain").json()["spec"]["container"] == {
        "image": IMAGE,
        "command": None,
        "args": [],
        "port": 8080,
        "health_route": "/health",
        "env": {},
        "model_mount": "/repository",
        "pull_policy": "if_not_present",
        "registry_secret": None,
    }

    moved = client.patch(f"{EP}/box", json={"container": {**BLOCK, "image": f"{IMAGE}-2"}})
    assert moved.status_code == 200, moved.text
    assert moved.json()["revision"] == 2  # a new image is a new revision
    assert client.get(f"{EP}/box").json()["spec"]["container"]["image"] == f"{IMAGE}-2"


def test_the_block_is_checked_field_by_field(client: TestClient) -> None:
    assert push(client, "iris", b"v1").status_code == 201
    cases = [
        ({"image": "Not An Image!"}, "container.image"),
        ({"port": 0}, "container.port"),
        ({"pull_policy": "sometimes"}, "container.pull_policy"),
        ({"model_mount": "relative"}, "container.model_mount"),
        ({"registry_secret": "ghost"}, "container.registry_secret"),  # no such secret
        ({"image": "dir:foo"}, "container.image"),  # a podman transport: files on the server
        ({"image": "docker-archive:x.tar"}, "container.image"),
        ({"env": {"A=B\nPORT": "1"}}, "container.env.A=B\nPORT"),
        ({"env": {"TOKEN": "a\u0000b"}}, "container.env.TOKEN"),
    ]
    for block, field in cases:
        r = client.post(EP, json=container_spec(**block))
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field, r.text
    no_image = {"name": "box", "model": "iris", "framework": "container"}
    r = client.post(EP, json=no_image)
    assert r.status_code == 422 and r.json()["field"] == "container", r.text


def test_the_engine_lookup_is_kept_briefly_and_sees_a_new_engine(tmp_path: Path) -> None:
    """A missing engine is remembered for the TTL (a deploy's check is cheap), and one
    installed afterwards is found once it passed."""
    now = [0.0]
    lookup = EngineLookup(ttl_s=30.0, now=lambda: now[0])
    program = tmp_path / "bin" / "podman"
    settings = ContainerSettings(engine=str(program))
    with pytest.raises(LoadError, match="not installed") as missing:
        lookup.engine(settings)
    assert missing.value.field == "container"

    program.parent.mkdir()
    program.write_text("#!/bin/sh\necho 9.9.9\n")
    program.chmod(0o755)
    now[0] = 29.0
    with pytest.raises(LoadError):  # still the remembered answer
        lookup.engine(settings)
    now[0] = 30.0
    engine = lookup.engine(settings)
    assert (engine.name, engine.version, engine.program) == ("podman", "9.9.9", str(program))

    spec = EndpointCreate.model_validate(container_spec())
    check_container(Settings(home=tmp_path / "home", containers=settings), spec, lookup)
    other = ContainerSettings(engine=str(tmp_path / "none" / "docker"))
    with pytest.raises(Invalid) as refused:
        check_container(Settings(home=tmp_path / "home", containers=other), spec, lookup)
    assert refused.value.field == "container"
