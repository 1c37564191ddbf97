"""The SDK's hf-shaped, Launch-shaped and async surfaces against a real `podium up`, with
real replicas and the real `huggingface_hub.InferenceClient` and `openai` clients.

Two tiny python-runtime endpoints serve it all (no torch): an "LLM" that echoes its prompt
(text generation, OpenAI chat) made with `create_inference_endpoint`, and an echo model
made with `create_model_endpoint`. Every wait is on a condition; nothing is timed.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import podium
from podium.client import AsyncClient, Conflict, EndpointStatus, NotFound, PodiumClient
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server, wait_running, wait_until
from tests.unit.replica.bundles import write_llm_bundle


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("models")
    with running_server(tmp / "home") as s, s.client() as c:
        c.push_model(write_llm_bundle(tmp / "llm", tmp / "llm-state"), "llm", framework="python")
        c.push_model(write_python_bundle(tmp / "echo"), "echo", framework="python")
        yield s


@pytest.fixture
def client(server: ServerProcess) -> Iterator[PodiumClient]:
    with server.client() as c:
        yield c


def routed(server: ServerProcess, name: str) -> None:
    """The gateway knows the endpoint (the controller's next pass publishes a new one)."""
    wait_until(
        lambda: httpx.get(f"{server.url}/v1/models/{name}", headers=server.headers).is_success,
        60,
        f"{name} in the routing table",
    )


def test_the_inference_endpoint_shape(server: ServerProcess, client: PodiumClient) -> None:
    ep = podium.create_inference_endpoint(
        repository="llm",
        framework="python",
        max_replica=1,
        scale_to_zero_timeout=10,  # minutes; given alone, min_replica is 0
        client=client,
    )
    assert ep.name.startswith("llm-")  # made from the model
    ep.wait(timeout=120)
    assert ep.status in ("running", "scaledToZero")
    routed(server, ep.name)

    # The real huggingface_hub client (TGI-style POST /) wakes it and gets the echo.
    text = ep.client.text_generation("hello world", max_new_tokens=5)
    assert text.split() == ["echo:", "hello", "world"]
    # The real openai client, on the OpenAI routes the endpoint serves.
    chat = ep.openai(max_retries=0).chat.completions.create(
        model=ep.name, messages=[{"role": "user", "content": "hi"}], max_tokens=8
    )
    assert (chat.choices[0].message.content or "").startswith("echo:")

    assert podium.get_inference_endpoint(ep.name, client=client).status == "running"
    assert ep.name in [e.name for e in podium.list_inference_endpoints(client=client)]
    revision = ep.revision
    assert ep.update(max_replica=2).raw.spec.scaling.max_replicas == 2
    assert ep.revision == revision  # scaling applies in place

    assert ep.pause().status == "paused"
    ep.resume()
    ep.wait(timeout=120)
    assert ep.status in ("running", "scaledToZero")

    ep.scale_to_zero()
    client.wait_for(ep.name, {EndpointStatus.SCALED_TO_ZERO}, timeout=60)
    assert ep.fetch().status == "scaledToZero"
    assert ep.client.text_generation("wake up", max_new_tokens=5).split() == ["echo:", "wake", "up"]
    assert ep.fetch().status == "running"  # the request woke it

    ep.delete()
    wait_until(lambda: not _exists(client, ep.name), 60, f"{ep.name} deleted")


def _exists(client: PodiumClient, name: str) -> bool:
    try:
        client.endpoint(name)
    except NotFound:
        return False
    return True


@pytest.fixture(scope="module")
def launched(server: ServerProcess) -> Iterator[podium.ModelEndpoint]:
    with server.client() as c:
        ep = podium.create_model_endpoint(
            "echo", "echo", min_workers=1, max_workers=1, per_worker=2,
            endpoint_type="async", labels={"team": "ml"}, client=c,
        )  # fmt: skip
        wait_running(c, "echo")
        yield ep


def test_the_launch_shape_upserts_and_predicts(
    launched: podium.ModelEndpoint, client: PodiumClient
) -> None:
    with pytest.raises(Conflict):
        podium.create_model_endpoint("echo", "echo", client=client)
    again = podium.create_model_endpoint(
        "echo", "echo", max_workers=2, update_if_exists=True, client=client
    )
    scaling = again.model_endpoint.spec.scaling
    assert (scaling.max_replicas, scaling.target_concurrency) == (2, 2)
    assert again.model_endpoint.revision == launched.model_endpoint.revision

    assert again.predict({"inputs": [1, 2]}) == {"version": 1, "echo": [1, 2]}
    future = again.predict_async({"inputs": [3]})
    assert future.result(timeout=60) == {"version": 1, "echo": [3]}
    assert "echo" in [e.name for e in podium.list_model_endpoints(client=client)]


async def test_the_async_client(server: ServerProcess, launched: podium.ModelEndpoint) -> None:
    async with AsyncClient(server.url, token=server.token) as client:
        ep = await client.wait_for("echo", {"running"}, timeout=60)
        assert ep.spec.labels["endpoint-type"] == "async"
        assert "echo" in [e.name for e in await client.endpoints()]
        assert await client.invoke("echo", {"inputs": "a"}) == {"version": 1, "echo": "a"}
        task = await client.predict_async("echo", {"inputs": "b"})
        assert await task.result(timeout=60) == {"version": 1, "echo": "b"}
        changed = await client.update("echo", {"labels": {"team": "ops"}})
        assert changed.spec.labels == {"team": "ops"}
