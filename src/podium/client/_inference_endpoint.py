"""huggingface_hub's Inference Endpoints API, served by Podium.

    import podium

    ep = podium.create_inference_endpoint(repository="org/model", framework="transformers",
                                          task="text-classification", min_replica=0,
                                          scale_to_zero_timeout=15)
    ep.wait(timeout=300)
    ep.client.text_classification("I love it")   # a huggingface_hub.InferenceClient
    ep.scale_to_zero(); ep.pause(); ep.resume(); ep.delete()

The names and semantics are huggingface_hub's where they apply (`create_inference_endpoint`,
`get_inference_endpoint`, `list_inference_endpoints`, `InferenceEndpoint`). Where Podium
differs:

- `repository`: a Podium model reference (`iris`, `iris:2`, `hf://org/name@rev`), or a
  Hugging Face repo id `org/name`, which means `hf://org/name` (and `revision=` its `@rev`).
- `namespace` is the Podium project (None: `default`).
- `secrets` names the project's secrets (`{"HF_TOKEN": "hf-token"}`: the variable gets the
  secret's value; `podium secrets set` stores them), it does not carry values.
- `framework="pytorch"` (the Hub's name for a transformers pipeline) means `transformers`.
- `scale_to_zero_timeout` is in minutes, as on the Hub; given without `min_replica`, the
  endpoint may go to zero (min_replica 0).
- `custom_image={"url", "health_route" (or the Hub's `healthRoute`), "env", "port"}` runs
  that image: `framework: container` with a `container` block (`image` is the `url`;
  Podium's other fields of the block, `pull_policy`, `registry_secret`, `model_mount`,
  `command`, `args`, may be given too). The Hub's `framework` (e.g. "pytorch") is then
  ignored, except a server preset (`tgi`, `vllm`, …), which runs from the image with its
  own arguments and routes. The Hub's variant-keyed form, `{"vLLM": {"url", "port"}}`
  (also `sGLang`, `tgi`, `llamacpp`; `custom` is the flat form), runs that preset from
  the image (the preset's own image when there is no `url`). The model's files are
  mounted at `/repository`, as on the Hub.
- `accelerator`, `instance_size`, `region` and `vendor` name a cloud's machines: accepted
  and ignored, so a script written for the Hub runs; size replicas with `instance_type`
  (a Podium instance type) or `resources` ({cpus, memory, gpus, gpu_type}).
- `status` is the Hub's status string; `podium_status` is Podium's own (`STATUS_MAP`).
- `wait()` also returns on `scaledToZero`. huggingface_hub's (2.4) returns only on
  `running` with a healthy URL and waits on through `scaledToZero`; but the Hub loads an
  endpoint made with `min_replica=0` before scaling it to zero, and Podium does not: such an
  endpoint starts at zero, so waiting for `running` would wait until `timeout` (forever
  without one). The model is then first loaded, and a bad one first seen, on the first
  request (or `resume()`/an update of `min_replica` to 1, then `wait()`).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from podium.client._calls import gateway_prefix, seg, wait_done
from podium.client._client import PodiumClient
from podium.client._shapes import create_body, default_client, update_body
from podium.core.access import DEFAULT_PROJECT
from podium.core.container_spec import CONTAINER_FRAMEWORK
from podium.core.errors import Invalid, LoadError
from podium.core.phases import EndpointStatus
from podium.core.probe_spec import EXTERNAL_FRAMEWORKS
from podium.core.schemas import EndpointPublic

if TYPE_CHECKING:
    import huggingface_hub
    import openai as openai_sdk

# Podium's status -> the Hub's (`huggingface_hub.InferenceEndpointStatus`). A failed
# endpoint whose older revision still serves is the Hub's `updateFailed`; `deleting` has no
# Hub counterpart and is passed on as it is.
STATUS_MAP: dict[EndpointStatus, str] = {
    EndpointStatus.PENDING: "pending",
    EndpointStatus.INITIALIZING: "initializing",
    EndpointStatus.RUNNING: "running",
    EndpointStatus.UPDATING: "updating",
    EndpointStatus.PAUSED: "paused",
    EndpointStatus.SCALED_TO_ZERO: "scaledToZero",
    EndpointStatus.FAILED: "failed",
    EndpointStatus.DELETING: "deleting",
}
UPDATE_FAILED = "updateFailed"
# What `wait()` waits for: serving, or ready to serve on the next request.
_DEPLOYED = frozenset({EndpointStatus.RUNNING, EndpointStatus.SCALED_TO_ZERO})
_HUB_FRAMEWORKS = {"pytorch": "transformers"}
WAIT_POLL_S = 1.0
# The server presets (vllm, tgi, …), which may run from an image (`core.probe_spec`).
PRESET_FRAMEWORKS = EXTERNAL_FRAMEWORKS - {"command"}


def hub_status(ep: EndpointPublic) -> str:
    """The Hub's status string for a Podium endpoint (see `STATUS_MAP`)."""
    if ep.status is EndpointStatus.FAILED and ep.ready_replicas > 0:
        return UPDATE_FAILED
    return STATUS_MAP[ep.status]


def model_ref(repository: str, revision: str | None = None) -> str:
    """A Podium model reference for `repository`: `org/name` → `hf://org/name[@revision]`;
    anything else (`iris:2`, `hf://…`, `s3://bucket/prefix`) is taken as a Podium
    reference (checked by the spec)."""
    if "/" in repository and not repository.startswith(("hf://", "s3://")):
        repository = f"hf://{repository}"
    if revision is not None:
        if not repository.startswith("hf://"):
            raise Invalid("`revision` applies to a Hugging Face repository", field="revision")
        repository = f"{repository}@{revision}"
    return repository


# huggingface_hub's `custom_image` keys -> the `container` block's (the Hub's own examples
# write `healthRoute`); Podium's own fields of the block may be given too (`pull_policy`,
# `registry_secret`, `model_mount`, `command`, `args`).
_IMAGE_KEYS = {
    "url": "image",
    "health_route": "health_route",
    "healthRoute": "health_route",
    "env": "env",
    "port": "port",
}
_BLOCK_KEYS = frozenset({"command", "args", "model_mount", "pull_policy", "registry_secret"})
# huggingface_hub's image variants (`custom_image={"vLLM": {"url": ..., "port": 8000}}`) ->
# the server preset that runs that image. `custom` is the flat form, wrapped as the Hub
# sends it.
VARIANTS = {"vLLM": "vllm", "sGLang": "sglang", "tgi": "tgi", "llamacpp": "llama.cpp"}
_CUSTOM = "custom"


def container_fields(
    custom_image: Any, framework: str | None
) -> tuple[str | None, dict[str, Any] | None]:
    """The spec's (`framework`, `container`) for the Hub's `custom_image` (`framework` is
    the one already mapped). A flat `{url, port, …}` runs as `framework: container`, or,
    with a server preset (`tgi`, `vllm`, …), the preset runs from that image (its
    arguments, health route and routes). The Hub's variant-keyed form (`{"vLLM": {url,
    port}}`, `sGLang`, `tgi`, `llamacpp`; `custom` is the flat form) runs the variant's
    preset with the inner mapping as the block (no `url`: the preset's own image).
    `Invalid` naming `custom_image[.KEY]` for a shape Podium cannot read."""
    if custom_image is None:
        return framework, None
    if not isinstance(custom_image, dict):
        raise Invalid("a mapping: {url, health_route, env, port}", field="custom_image")
    if custom_image.keys() & (_IMAGE_KEYS.keys() | _BLOCK_KEYS) or not custom_image:
        block = _block(custom_image, "custom_image", needs_url=True)
        return (framework if framework in PRESET_FRAMEWORKS else CONTAINER_FRAMEWORK), block
    if len(custom_image) > 1:
        raise Invalid(
            f"one image variant, not {len(custom_image)}: {', '.join(map(repr, custom_image))}",
            field="custom_image",
        )
    ((variant, inner),) = custom_image.items()
    where = f"custom_image.{variant}"
    if not isinstance(inner, dict):
        raise Invalid("a mapping: {url, port, …}", field=where)
    if variant == _CUSTOM:
        block = _block(inner, where, needs_url=True)
        return (framework if framework in PRESET_FRAMEWORKS else CONTAINER_FRAMEWORK), block
    preset = VARIANTS.get(variant)
    if preset is None:
        known = ", ".join([*VARIANTS, _CUSTOM])
        raise Invalid(
            f"Podium runs the image variants {known} (or the flat form {{url, port, …}}, "
            f"any image), not {variant!r}",
            field=where,
        )
    if framework in PRESET_FRAMEWORKS and framework != preset:
        raise Invalid(
            f"the {variant} variant runs framework {preset}, not {framework}", field=where
        )
    return preset, _block(inner, where, needs_url=False)


def _block(image: dict[str, Any], where: str, *, needs_url: bool) -> dict[str, Any]:
    """The `container` block for one flat image mapping; `where` names it in errors."""
    block: dict[str, Any] = {}
    for key, value in image.items():
        if key in _IMAGE_KEYS:
            block[_IMAGE_KEYS[key]] = value
        elif key in _BLOCK_KEYS:
            block[key] = value
        else:
            known = ", ".join([*_IMAGE_KEYS, *sorted(_BLOCK_KEYS)])
            raise Invalid(f"unknown key {key!r}; known: {known}", field=f"{where}.{key}")
    if needs_url and "image" not in block:
        raise Invalid("the image to run (e.g. ghcr.io/org/server:1)", field=f"{where}.url")
    return block


def hf_fields(
    *,
    repository: str | None,
    revision: str | None,
    framework: str | None,
    task: str | None,
    instance_type: str | None,
    resources: dict[str, Any] | None,
    min_replica: int | None,
    max_replica: int | None,
    scale_to_zero_timeout: float | None,
    custom_image: Any,
    secrets: dict[str, str] | None,
    env: dict[str, Any] | None,
    labels: dict[str, str] | None,
    type: str | None,
) -> dict[str, Any]:
    """The hf-shaped arguments as spec fields (None: not given), for create and update."""
    framework, container = container_fields(
        custom_image, _HUB_FRAMEWORKS.get(framework, framework) if framework else None
    )
    if scale_to_zero_timeout is not None and scale_to_zero_timeout < 0:
        raise Invalid("minutes, at least 0", field="scale_to_zero_timeout")
    if scale_to_zero_timeout is not None and min_replica is None:
        min_replica = 0
    return {
        "model": None if repository is None else model_ref(repository, revision),
        "framework": framework,
        "container": container,
        "task": task,
        "instance_type": instance_type,
        "env": env,
        "env_from_secrets": secrets,
        "labels": labels,
        "visibility": type,
        "scaling": {
            "min_replicas": min_replica,
            "max_replicas": max_replica,
            "scale_to_zero_after": (
                None if scale_to_zero_timeout is None else scale_to_zero_timeout * 60
            ),
        },
        "resources": dict(resources or {}),
    }


class InferenceEndpoint:
    """One endpoint, as huggingface_hub's `InferenceEndpoint` shows it.

    Attributes are those of the last answer (`fetch()` reads it again): `name`, `namespace`
    (the project), `repository` (the model reference), `framework`, `task`, `revision`,
    `status` (the Hub's string), `podium_status`, `url` (the endpoint's address on this
    client's server), `type` (protected/public), `created_at`, `updated_at`, and `raw`, the
    whole `EndpointPublic`. `podium` is the `PodiumClient` it talks through.
    """

    def __init__(self, view: EndpointPublic, podium: PodiumClient) -> None:
        self.podium = podium
        self._set(view)

    def _set(self, view: EndpointPublic) -> InferenceEndpoint:
        self.raw = view
        self.name = view.name
        self.namespace = view.project
        self.repository = view.spec.model
        self.framework = view.spec.framework
        self.task = view.spec.task
        self.revision = view.revision
        self.podium_status = view.status
        self.status = hub_status(view)
        self.type = view.visibility.value
        self.created_at: datetime = view.created_at
        self.updated_at: datetime = view.updated_at
        where = f"{gateway_prefix(view.project)}/endpoints/{seg(view.name)}"
        self.url = self.podium.base_url + where
        return self

    def __repr__(self) -> str:
        return (
            f"InferenceEndpoint(name={self.name!r}, namespace={self.namespace!r}, "
            f"repository={self.repository!r}, status={self.status!r}, url={self.url!r})"
        )

    @property
    def _project(self) -> str | None:
        return None if self.namespace == DEFAULT_PROJECT else self.namespace

    # ------------------------------------------------------------ the Hub's methods

    def fetch(self) -> InferenceEndpoint:
        """Read the endpoint again; returns itself."""
        return self._set(self.podium.endpoint(self.name, project=self._project))

    def pause(self) -> InferenceEndpoint:
        """Stop every replica; requests are refused until `resume()`."""
        return self._set(self.podium.pause(self.name, project=self._project))

    def resume(self, running_ok: bool = True) -> InferenceEndpoint:
        """Start a paused endpoint again. `running_ok` (the Hub's): resuming one that is not
        paused is not an error."""
        if running_ok and self.fetch().podium_status is not EndpointStatus.PAUSED:
            return self
        return self._set(self.podium.resume(self.name, project=self._project))

    def scale_to_zero(self) -> InferenceEndpoint:
        """Stop every replica now; the next request wakes the endpoint (unlike `pause`)."""
        return self._set(self.podium.scale_to_zero(self.name, project=self._project))

    def update(
        self,
        *,
        repository: str | None = None,
        revision: str | None = None,
        framework: str | None = None,
        task: str | None = None,
        instance_type: str | None = None,
        resources: dict[str, Any] | None = None,
        min_replica: int | None = None,
        max_replica: int | None = None,
        scale_to_zero_timeout: float | None = None,
        custom_image: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
        env: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        type: str | None = None,
        **cloud: Any,
    ) -> InferenceEndpoint:
        """Change what is given (the arguments of `create_inference_endpoint`); a new
        revision rolls out when a revision field changed. Returns itself, updated."""
        _check_cloud(cloud)
        fields = hf_fields(
            repository=repository,
            revision=revision,
            framework=framework,
            task=task,
            instance_type=instance_type,
            resources=resources,
            min_replica=min_replica,
            max_replica=max_replica,
            scale_to_zero_timeout=scale_to_zero_timeout,
            custom_image=custom_image,
            secrets=secrets,
            env=env,
            labels=labels,
            type=type,
        )
        body = update_body(self.fetch().raw.spec, **fields)
        return self._set(self.podium.update(self.name, body, project=self._project))

    def wait(
        self, timeout: float | None = None, refresh_every: float = WAIT_POLL_S
    ) -> InferenceEndpoint:
        """Wait until the endpoint is deployed: running, or scaled to zero (it wakes on the
        next request; huggingface_hub waits for running only: see the module doc).
        `LoadError` at once when it failed (the reason is the message); `WaitTimeout` (a
        `TimeoutError`) after `timeout` seconds (None: wait on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.fetch()
            if self.status == UPDATE_FAILED:
                raise LoadError(
                    f"endpoint {self.name} failed to update: {self.raw.status_reason or '?'}"
                )
            left = float("inf") if deadline is None else deadline - time.monotonic()
            if wait_done(self.raw, _DEPLOYED, timeout or 0.0, left):
                return self
            time.sleep(min(refresh_every, left))

    def delete(self) -> None:
        """Delete the endpoint (it is gone once its replicas have stopped)."""
        self._set(self.podium.delete(self.name, project=self._project))

    # ------------------------------------------------------------ clients for the endpoint

    @property
    def client(self) -> huggingface_hub.InferenceClient:
        """A `huggingface_hub.InferenceClient` for this endpoint, with this client's token."""
        from huggingface_hub import InferenceClient

        return InferenceClient(model=self.url, token=self.podium.auth_token)

    @property
    def async_client(self) -> huggingface_hub.AsyncInferenceClient:
        """The `huggingface_hub.AsyncInferenceClient` equivalent of `client`."""
        from huggingface_hub import AsyncInferenceClient

        return AsyncInferenceClient(model=self.url, token=self.podium.auth_token)

    def openai(self, **options: Any) -> openai_sdk.OpenAI:
        """An `openai.OpenAI` client for the OpenAI routes this endpoint serves (chat,
        completions, embeddings: what its model can do), with this client's token. Needs
        the `openai` package (`pip install podium[openai]`); `options` go to `OpenAI(...)`."""
        client: openai_sdk.OpenAI = _openai_module().OpenAI(
            base_url=f"{self.url}/v1", api_key=self.podium.auth_token or "none", **options
        )
        return client

    def async_openai(self, **options: Any) -> openai_sdk.AsyncOpenAI:
        """The `openai.AsyncOpenAI` equivalent of `openai()`."""
        client: openai_sdk.AsyncOpenAI = _openai_module().AsyncOpenAI(
            base_url=f"{self.url}/v1", api_key=self.podium.auth_token or "none", **options
        )
        return client


def _openai_module() -> Any:
    try:
        import openai
    except ImportError:
        raise ImportError(
            "InferenceEndpoint.openai() needs the openai package: pip install 'podium[openai]'"
        ) from None
    return openai


_CLOUD = frozenset({"accelerator", "instance_size", "region", "vendor", "account_id"})


def _check_cloud(cloud: dict[str, Any]) -> None:
    """The Hub's cloud placement arguments are accepted and ignored; any other is a typo."""
    for key in cloud:
        if key not in _CLOUD:
            raise Invalid(f"unknown argument {key!r}", field=key)


# ---------------------------------------------------------------- the module functions


def create_inference_endpoint(
    name: str | None = None,
    *,
    repository: str,
    framework: str | None = None,
    task: str | None = None,
    revision: str | None = None,
    instance_type: str | None = None,
    resources: dict[str, Any] | None = None,
    min_replica: int | None = None,
    max_replica: int | None = None,
    scale_to_zero_timeout: float | None = None,
    custom_image: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    env: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    type: str | None = None,
    namespace: str | None = None,
    client: PodiumClient | None = None,
    url: str | None = None,
    token: str | None = None,
    **cloud: Any,
) -> InferenceEndpoint:
    """Create an endpoint serving `repository` (see the module doc for how the Hub's
    arguments map); `name` None: one made from the model (`gemma-1-1-2b-it-x7k`). Returns
    at once; `.wait()` for it to serve. `Conflict` when the name is taken."""
    _check_cloud(cloud)
    fields = hf_fields(
        repository=repository,
        revision=revision,
        framework=framework,
        task=task,
        instance_type=instance_type,
        resources=resources,
        min_replica=min_replica,
        max_replica=max_replica,
        scale_to_zero_timeout=scale_to_zero_timeout,
        custom_image=custom_image,
        secrets=secrets,
        env=env,
        labels=labels,
        type=type,
    )
    podium = default_client(client, url=url, token=token)
    body = create_body(name=name, project=namespace, **fields)
    return InferenceEndpoint(podium.deploy(body), podium)


def get_inference_endpoint(
    name: str,
    *,
    namespace: str | None = None,
    client: PodiumClient | None = None,
    url: str | None = None,
    token: str | None = None,
) -> InferenceEndpoint:
    """The endpoint `name` of project `namespace` (`NotFound` when there is none)."""
    podium = default_client(client, url=url, token=token)
    return InferenceEndpoint(podium.endpoint(name, project=namespace), podium)


def list_inference_endpoints(
    namespace: str | None = None,
    *,
    client: PodiumClient | None = None,
    url: str | None = None,
    token: str | None = None,
) -> list[InferenceEndpoint]:
    """The endpoints of project `namespace`, or of every project the token may read (None;
    the Hub's `"*"` means the same)."""
    podium = default_client(client, url=url, token=token)
    project = None if namespace in (None, "*") else namespace
    return [InferenceEndpoint(ep, podium) for ep in podium.endpoints(project=project)]
