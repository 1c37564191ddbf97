"""The hf-shaped and Launch-shaped SDK functions against the real server app
(`tests.support.inproc`): what they send is what the API stores; the test plays the
controller (`ready`, `fail`). The real replicas and client libraries are in
tests/integration/test_sdk_shapes.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import podium as podium_pkg
from podium.client import (
    STATUS_MAP,
    Conflict,
    EndpointStatus,
    InferenceEndpoint,
    Invalid,
    LoadError,
    ModelEndpoint,
    NotFound,
    PodiumClient,
    QuotaExceeded,
    Unavailable,
    WaitTimeout,
    create_inference_endpoint,
    create_model_endpoint,
    delete_model_endpoint,
    edit_model_endpoint,
    get_inference_endpoint,
    get_model_endpoint,
    list_inference_endpoints,
    list_model_endpoints,
)
from podium.client._inference_endpoint import VARIANTS, hub_status, model_ref
from tests.support.inproc import InProcessPodium
from tests.unit.client.test_packing import make_model


@pytest.fixture
def pushed(client: PodiumClient, tmp_path: Path) -> PodiumClient:
    client.push_model(make_model(tmp_path), "iris", framework="sklearn")
    return client


# ---------------------------------------------------------------- huggingface_hub's shape


def test_create_maps_the_hub_arguments_onto_the_spec(pushed: PodiumClient) -> None:
    pushed.set_secret("api-key", "s3cret")
    ep = create_inference_endpoint(
        "iris",
        repository="iris",
        framework="sklearn",
        min_replica=None,
        max_replica=2,
        scale_to_zero_timeout=15,
        secrets={"API_KEY": "api-key"},  # the project's secret `api-key`, by name
        env={"LOG_LEVEL": "debug"},
        labels={"team": "ml"},
        type="public",
        accelerator="cpu",  # the Hub's cloud placement: accepted, ignored
        region="us-east-1",
        client=pushed,
    )
    assert isinstance(ep, InferenceEndpoint)
    spec = ep.raw.spec
    assert (ep.name, ep.namespace, ep.repository, ep.framework) == (
        "iris",
        "default",
        "iris",
        "sklearn",
    )
    # scale_to_zero_timeout is in minutes; given alone, it lets the endpoint go to zero
    assert (spec.scaling.min_replicas, spec.scaling.max_replicas) == (0, 2)
    assert spec.scaling.scale_to_zero_after == 900
    assert spec.env_from_secrets == {"API_KEY": "api-key"}
    assert (spec.env, spec.labels, ep.type) == ({"LOG_LEVEL": "debug"}, {"team": "ml"}, "public")
    assert ep.url == f"{pushed.base_url}/endpoints/iris"
    assert ep.status in ("pending", "scaledToZero")
    assert ep.podium is pushed


def test_the_lifecycle_methods(pushed: PodiumClient, podium: InProcessPodium) -> None:
    ep = create_inference_endpoint(repository="iris", client=pushed)  # no name: one is made
    assert ep.name.startswith("iris-") and ep.status == "pending"
    podium.ready(ep.name)
    assert ep.wait(timeout=5) is ep and ep.status == "running"
    assert ep.podium_status is EndpointStatus.RUNNING

    assert ep.pause().status == "paused"
    assert ep.resume().podium_status is not EndpointStatus.PAUSED
    podium.ready(ep.name)
    assert ep.resume().status == "running"  # running_ok: resuming a running one is fine
    assert ep.scale_to_zero().raw.desired_replicas == 0  # the controller stops them next

    before = ep.revision
    ep.update(max_replica=3)  # one knob of the scaling block: the others are kept
    scaling = ep.raw.spec.scaling
    assert (scaling.min_replicas, scaling.max_replicas, ep.revision) == (1, 3, before)
    ep.update(resources={"cpus": 1, "memory": "1Gi"}, env={"A": "1"})
    assert ep.raw.spec.resources is not None and ep.raw.spec.resources.memory == 1024
    assert ep.revision == before + 1  # resources and env are revision fields

    same = get_inference_endpoint(ep.name, client=pushed)
    assert (same.name, same.revision) == (ep.name, ep.revision)
    assert [e.name for e in list_inference_endpoints(client=pushed)] == [ep.name]
    assert list_inference_endpoints("*", client=pushed)[0].name == ep.name
    ep.delete()
    assert ep.status == "deleting"


def test_wait_raises_the_failure_and_times_out(
    pushed: PodiumClient, podium: InProcessPodium
) -> None:
    ep = create_inference_endpoint("iris", repository="iris", client=pushed)
    with pytest.raises(WaitTimeout, match="still pending") as timed_out:
        ep.wait(timeout=0.2, refresh_every=0.05)
    assert isinstance(timed_out.value, TimeoutError) and isinstance(timed_out.value, Unavailable)
    podium.fail("iris", "the model does not load")
    with pytest.raises(LoadError, match="the model does not load"):
        ep.wait(timeout=5)


def test_wait_returns_at_zero_where_the_hub_would_wait_for_running(
    pushed: PodiumClient,
) -> None:
    """The documented difference: an endpoint made with min_replica=0 starts at zero in
    Podium (the Hub loads it first), so `wait()` returns on `scaledToZero`, no replica made."""
    ep = create_inference_endpoint("iris", repository="iris", min_replica=0, client=pushed)
    assert ep.wait(timeout=0.2, refresh_every=0.05).status == "scaledToZero"
    assert ep.raw.ready_replicas == 0 and ep.raw.desired_replicas == 0


def test_hub_arguments_podium_cannot_honour_are_clear_422s(pushed: PodiumClient) -> None:
    with pytest.raises(Invalid) as typo:
        create_inference_endpoint(repository="iris", min_replicas=1, client=pushed)
    assert typo.value.field == "min_replicas"
    with pytest.raises(Invalid) as minutes:
        create_inference_endpoint(repository="iris", scale_to_zero_timeout=-1, client=pushed)
    assert minutes.value.field == "scale_to_zero_timeout"
    with pytest.raises(Invalid) as refs:  # checked by the spec, naming its field
        create_inference_endpoint(repository="Not A Ref", client=pushed)
    assert refs.value.field == "model"


IMAGE = "localhost/podium-test/busybox:1"


def test_custom_image_runs_that_image_as_a_container_endpoint(pushed: PodiumClient) -> None:
    """The Hub's `custom_image` is `framework: container` + its `container` block; the
    Hub's framework name ("pytorch") gives way to the image."""
    ep = create_inference_endpoint(
        "box",
        repository="iris",
        framework="pytorch",
        min_replica=0,
        custom_image={
            "url": IMAGE,
            "health_route": "/health",
            "env": {"MODEL_ID": "/repository"},
            "port": 9000,
        },
        client=pushed,
    )
    assert ep.framework == "container"
    block = ep.raw.spec.container
    assert block is not None
    assert (block.image, block.health_route, block.env, block.port) == (
        IMAGE,
        "/health",
        {"MODEL_ID": "/repository"},
        9000,
    )
    assert (block.model_mount, block.pull_policy.value) == ("/repository", "if_not_present")

    revision = ep.revision
    ep.update(custom_image={"url": IMAGE.replace(":1", ":2"), "pull_policy": "never"})
    block = ep.raw.spec.container
    assert block is not None and ep.revision == revision + 1
    assert (block.image, block.pull_policy.value, block.port) == (
        IMAGE.replace(":1", ":2"),
        "never",
        8080,  # the block is replaced whole, as the Hub replaces `custom_image`
    )

    # a server preset runs from the image given (its own arguments and routes)
    tgi = create_inference_endpoint(
        "gen", repository="iris", framework="tgi", custom_image={"url": IMAGE}, client=pushed
    )
    assert tgi.framework == "tgi" and tgi.raw.spec.container is not None


def test_custom_image_shapes_podium_cannot_read_name_the_key(pushed: PodiumClient) -> None:
    cases = [
        ({"health_route": "/health"}, "custom_image.url"),
        ({"url": IMAGE, "credentials": {"password": "x"}}, "custom_image.credentials"),
        ("ghcr.io/x:1", "custom_image"),
        ({"url": "Not An Image"}, "container.image"),  # the server's check of the block
    ]
    for custom_image, field in cases:
        with pytest.raises(Invalid) as refused:
            create_inference_endpoint(
                repository="iris",
                custom_image=custom_image,  # type: ignore[arg-type]
                client=pushed,
            )
        assert refused.value.field == field
    assert list_inference_endpoints(client=pushed) == []


def test_custom_image_as_huggingface_hub_writes_it(pushed: PodiumClient) -> None:
    """huggingface_hub's own docs example (camelCase `healthRoute`), and the same mapping
    as huggingface_hub sends it (`_build_endpoint_image_payload` wraps a flat mapping in
    `{"custom": …}`): both run the image as a container endpoint."""
    from huggingface_hub._inference_endpoints import _build_endpoint_image_payload

    example = {
        "healthRoute": "/health",
        "url": "ghcr.io/huggingface/text-generation-inference:1.1.0",
    }
    for name, custom_image in [
        ("docs", example),
        ("wrapped", _build_endpoint_image_payload({**example, "healthRoute": "/ping"})),
    ]:
        ep = create_inference_endpoint(
            name, repository="iris", framework="pytorch", custom_image=custom_image, client=pushed
        )
        block = ep.raw.spec.container
        assert ep.framework == "container" and block is not None
        assert block.image == example["url"]
        assert block.health_route == ("/health" if name == "docs" else "/ping")


def test_custom_image_variants_run_their_preset(pushed: PodiumClient) -> None:
    """The Hub's variant-keyed form (`{"vLLM": {"url": …, "port": 8000}}`) runs the matching
    preset from that image; every variant Podium maps is one huggingface_hub names."""
    import inspect

    from huggingface_hub import HfApi
    from huggingface_hub._inference_endpoints import _build_endpoint_image_payload

    hub_doc = inspect.getdoc(HfApi.create_inference_endpoint) or ""
    for variant in VARIANTS:
        assert f"`{variant}`" in hub_doc or f'"{variant}"' in hub_doc, variant
    images = {
        "vLLM": "vllm/vllm-openai:v0.23.0",
        "sGLang": "lmsysorg/sglang:v0.5.0",
        "tgi": "ghcr.io/huggingface/text-generation-inference:3.0",
        "llamacpp": "ghcr.io/ggml-org/llama.cpp:server",
    }
    for i, (variant, url) in enumerate(images.items()):
        custom_image = {variant: {"url": url, "port": 8000, "healthRoute": "/health"}}
        assert _build_endpoint_image_payload(custom_image) == custom_image  # sent as is
        ep = create_inference_endpoint(
            f"var-{i}",
            repository="iris",
            framework="pytorch",
            custom_image=custom_image,
            client=pushed,
        )
        block = ep.raw.spec.container
        assert ep.framework == VARIANTS[variant] and block is not None
        assert (block.image, block.port) == (url, 8000)
    own = create_inference_endpoint(
        "own-image", repository="iris", custom_image={"tgi": {}}, client=pushed
    )
    assert own.framework == "tgi" and own.raw.spec.container is not None
    assert own.raw.spec.container.image is None  # the preset's official image


def test_custom_image_variants_podium_cannot_run_name_the_key(pushed: PodiumClient) -> None:
    url = "vllm/vllm-openai:v0.23.0"
    cases: list[tuple[dict[str, object], str | None, str]] = [
        ({"tei": {"url": "ghcr.io/huggingface/tei:1"}}, None, "custom_image.tei"),
        ({"vLLM": {"url": url}, "tgi": {"url": url}}, None, "custom_image"),
        ({"vLLM": {"url": url, "maxNumSeqs": 4}}, None, "custom_image.vLLM.maxNumSeqs"),
        ({"vLLM": {"url": url}}, "tgi", "custom_image.vLLM"),  # two presets named
        ({"vLLM": url}, None, "custom_image.vLLM"),
        ({"custom": {"port": 80}}, None, "custom_image.custom.url"),
    ]
    for custom_image, framework, field in cases:
        with pytest.raises(Invalid) as refused:
            create_inference_endpoint(
                repository="iris", framework=framework, custom_image=custom_image, client=pushed
            )
        assert refused.value.field == field, (custom_image, refused.value)
    assert list_inference_endpoints(client=pushed) == []


def test_repository_names_a_podium_model_or_a_hub_repo() -> None:
    assert model_ref("iris:2") == "iris:2"
    assert model_ref("google/gemma-2b") == "hf://google/gemma-2b"
    assert model_ref("google/gemma-2b", "v1") == "hf://google/gemma-2b@v1"
    assert model_ref("hf://org/name") == "hf://org/name"
    assert model_ref("s3://models/team/iris") == "s3://models/team/iris"  # not hf://s3://…
    with pytest.raises(Invalid) as revision:
        model_ref("iris", "v1")
    assert revision.value.field == "revision"


@pytest.mark.parametrize("status", list(EndpointStatus))
def test_every_podium_status_has_a_hub_status(status: EndpointStatus, pushed: PodiumClient) -> None:
    view = pushed.deploy({"name": "iris", "model": "iris"})
    assert hub_status(view.model_copy(update={"status": status})) == STATUS_MAP[status]
    failed = view.model_copy(update={"status": EndpointStatus.FAILED, "ready_replicas": 1})
    assert hub_status(failed) == "updateFailed"  # the older revision still serves


def test_the_module_functions_use_a_default_client(
    pushed: PodiumClient, podium: InProcessPodium, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_URL", podium.url)  # and $PODIUM_TOKEN (the fixture's)
    ep = podium_pkg.create_inference_endpoint("iris", repository="iris")
    assert podium_pkg.get_inference_endpoint("iris").podium is ep.podium
    assert ep.podium.base_url == podium.url
    assert podium_pkg.Client is PodiumClient
    with pytest.raises(AttributeError):
        _ = podium_pkg.no_such_name


# ---------------------------------------------------------------- Scale Launch's shape


def test_create_model_endpoint_upserts(pushed: PodiumClient, podium: InProcessPodium) -> None:
    ep = create_model_endpoint(
        "iris",
        "iris",
        cpus=1,
        memory="1Gi",
        min_workers=1,
        max_workers=1,
        per_worker=5,
        endpoint_type="async",
        labels={"team": "ml"},
        client=pushed,
    )
    assert isinstance(ep, ModelEndpoint) and ep.endpoint_type == "async"
    spec = ep.model_endpoint.spec
    assert spec.resources is not None
    assert (spec.resources.cpus, spec.resources.memory, spec.resources.gpus) == (1, 1024, 0)
    assert spec.scaling.target_concurrency == 5
    assert spec.labels == {"team": "ml", "endpoint-type": "async"}

    with pytest.raises(Conflict):
        create_model_endpoint("iris", "iris", client=pushed)
    again = create_model_endpoint(
        "iris", "iris", max_workers=3, update_if_exists=True, client=pushed
    )
    scaling = again.model_endpoint.spec.scaling
    assert (scaling.min_replicas, scaling.max_replicas, scaling.target_concurrency) == (1, 3, 5)
    assert again.model_endpoint.revision == ep.model_endpoint.revision  # scaling: in place
    assert again.endpoint_type == "async"  # an upsert changes only what it is given

    edited = edit_model_endpoint(again, memory="2Gi", labels={"team": "ops"}, client=pushed)
    assert edited.model_endpoint.spec.labels == {"team": "ops", "endpoint-type": "async"}
    assert edited.model_endpoint.spec.resources is not None
    assert (
        edited.model_endpoint.spec.resources.memory,
        edited.model_endpoint.spec.resources.cpus,
    ) == (2048, 1)

    podium.ready("iris")
    assert get_model_endpoint("iris", client=pushed).status() == "running"
    assert edited.predict({"inputs": [1, 2]}) == {"outputs": [1, 2], "path": "/"}
    assert [e.name for e in list_model_endpoints(client=pushed)] == ["iris"]
    assert delete_model_endpoint("iris", client=pushed) is True
    with pytest.raises(NotFound):
        edit_model_endpoint("nothing", max_workers=2, client=pushed)


def test_an_unknown_endpoint_type_is_refused(pushed: PodiumClient) -> None:
    with pytest.raises(Invalid) as kind:
        create_model_endpoint("iris", "iris", endpoint_type="batch", client=pushed)
    assert kind.value.field == "endpoint_type"
    assert create_model_endpoint("plain", "iris", client=pushed).endpoint_type == "sync"
    with pytest.raises(Invalid) as size:  # the spec's own check, naming the field
        create_model_endpoint("iris", "iris", memory="lots", client=pushed)
    assert size.value.field == "resources.memory"


class _RivalCreates(httpx.HTTPTransport):
    """Real HTTP, with one interleaving made certain: just before this client's create
    reaches the server, a rival client creates the same endpoint (a concurrent upsert)."""

    def __init__(self, rival: Callable[[], object]) -> None:
        super().__init__()
        self._rival: Callable[[], object] | None = rival

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._rival is not None and (request.method, request.url.path) == (
            "POST",
            "/api/v1/endpoints",
        ):
            rival, self._rival = self._rival, None
            rival()
        return super().handle_request(request)


def test_an_upsert_that_loses_the_create_race_updates_instead(
    pushed: PodiumClient, podium: InProcessPodium
) -> None:
    rival = _RivalCreates(lambda: create_model_endpoint("iris", "iris", client=pushed))
    with PodiumClient(podium.url, token=podium.token, transport=rival) as mine:
        ep = create_model_endpoint(
            "iris", "iris", max_workers=3, update_if_exists=True, client=mine
        )
    assert ep.model_endpoint.spec.scaling.max_replicas == 3  # the rival's endpoint, updated
    assert [e.name for e in list_model_endpoints(client=pushed)] == ["iris"]
    racing = _RivalCreates(lambda: create_model_endpoint("solo", "iris", client=pushed))
    with (
        PodiumClient(podium.url, token=podium.token, transport=racing) as mine,
        pytest.raises(Conflict),  # without update_if_exists: the Conflict, as before
    ):
        create_model_endpoint("solo", "iris", client=mine)


def test_an_upsert_refused_by_a_quota_raises_the_quota_error(pushed: PodiumClient) -> None:
    """Only the name-taken 409 turns an upsert's create into an update: a quota refusal (a
    Conflict too) is raised as itself, not as the NotFound of an update of nothing."""
    pushed.update_project("default", quotas={"max_replicas": 1})
    with pytest.raises(QuotaExceeded) as refused:
        create_model_endpoint(
            "iris", "iris", min_workers=2, max_workers=2, update_if_exists=True, client=pushed
        )
    assert refused.value.field == "max_replicas"
