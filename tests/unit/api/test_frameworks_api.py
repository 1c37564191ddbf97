"""The frameworks catalog through the real API (`GET /api/v1/frameworks`), and the
service's installed/usable rules on a described host."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi.testclient import TestClient

from podium.api.services.catalog import CatalogService, Host
from podium.core.catalog_schemas import FrameworkPublic
from podium.core.settings import BackendKind, ContainerSettings, Settings
from podium.runtimes.catalog import TRANSFORMERS_TASKS
from podium.runtimes.registry import known_runtimes
from podium.runtimes.transformers.tasks import TASKS

URL = "/api/v1/frameworks"


def by_name(items: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(i["name"]): i for i in items}


def test_every_known_framework_is_listed_once_with_what_it_serves(client: TestClient) -> None:
    r = client.get(URL)
    assert r.status_code == 200, r.text
    items = r.json()
    assert [i["name"] for i in items] == known_runtimes()  # sorted, one each
    cat = by_name(items)
    assert {n: cat[n]["kind"] for n in ("sklearn", "vllm", "command", "container")} == {
        "sklearn": "builtin",
        "vllm": "preset",
        "command": "command",
        "container": "container",
    }
    sk = cat["sklearn"]
    assert (sk["protocols"], sk["gpu"], sk["requires"]) == (
        ["hf", "v2"],
        "none",
        "python package sklearn",
    )
    assert ".skops" in sk["formats"]
    assert sk["installed"] is sk["usable"] is True  # the test environment has scikit-learn
    assert cat["python"]["requires"] is None and cat["python"]["usable"] is True
    assert cat["llama.cpp"]["formats"] == [".gguf"]
    assert (cat["vllm"]["gpu"], cat["vllm"]["protocols"]) == ("required", ["openai"])
    assert cat["vllm"]["requires"] == "program vllm"
    assert cat["sglang"]["requires"] == "python package sglang"
    transformers = cat["transformers"]
    found = importlib.util.find_spec("transformers") is not None
    assert (transformers["installed"], transformers["usable"]) == (found, found)


def test_q_searches_name_summary_and_tasks_case_insensitively(client: TestClient) -> None:
    def names(q: str) -> list[str]:
        r = client.get(URL, params={"q": q})
        assert r.status_code == 200, r.text
        return [i["name"] for i in r.json()]

    assert names("VLLM") == ["vllm"]  # name
    assert names("gguf") == []  # formats are not searched
    assert names("quantized") == ["llama.cpp"]  # summary
    assert names("Image-Classification") == ["transformers"]  # a task
    assert set(names("text-generation")) == {"llama.cpp", "sglang", "tgi", "transformers", "vllm"}
    assert names("nothing-serves-this") == []
    assert len(names("")) == len(known_runtimes())


def test_a_query_past_64_characters_is_a_422_naming_q(client: TestClient) -> None:
    r = client.get(URL, params={"q": "x" * 65})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "q"
    assert client.get(URL, params={"q": "x" * 64}).status_code == 200


def test_installed_and_usable_follow_the_host() -> None:
    """A host with vllm on PATH but no GPU: installed, not usable, and it says why."""
    bare = Host(env={"PATH": "/nowhere"}, importable=lambda package: package == "sklearn")
    cat = {f.name: f for f in CatalogService(bare).list()}
    assert (cat["vllm"].installed, cat["vllm"].usable) == (False, False)
    assert cat["vllm"].why_not == "not installed: program vllm not found on this backend"
    assert (cat["onnx"].installed, cat["sklearn"].usable) == (False, True)

    class WithVllm(Host):
        def has_program(self, name: str) -> bool:
            return name == "vllm"

        def has_gpu(self) -> bool:
            return False

    cat = {f.name: f for f in CatalogService(WithVllm()).list("vllm")}
    vllm: FrameworkPublic = cat["vllm"]
    assert (vllm.installed, vllm.usable) == (True, False)
    assert vllm.why_not == "needs a GPU; no NVIDIA GPU is visible on this backend"


def test_the_transformers_tasks_in_the_catalog_are_the_runtimes() -> None:
    assert TRANSFORMERS_TASKS == TASKS


def test_container_is_usable_where_a_container_deploy_is_accepted(tmp_path: Path) -> None:
    """The catalog says what the deploy's check would: an engine here, and not Ray."""
    here = {f.name: f for f in CatalogService(settings=Settings(home=tmp_path)).list()}
    container = here["container"]
    assert (container.kind, container.usable, container.why_not) == ("container", True, None)
    assert container.requires == "a container engine (podman, or docker with its daemon)"

    missing = ContainerSettings(engine=str(tmp_path / "nowhere" / "podman"))
    none = CatalogService(settings=Settings(home=tmp_path, containers=missing)).list("container")
    assert [(f.name, f.installed, f.usable) for f in none] == [("container", False, False)]
    assert "cannot run container endpoints" in (none[0].why_not or "")
    ray = CatalogService(settings=Settings(home=tmp_path, backend=BackendKind.RAY)).list("OCI")
    assert [f.name for f in ray] == ["container"]
    assert "local backend" in (ray[0].why_not or "")
