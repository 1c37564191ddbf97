"""Scale Launch's model-endpoint functions, served by Podium.

    import podium

    ep = podium.create_model_endpoint("iris", "iris:1", cpus=1, memory="1Gi",
                                      min_workers=0, max_workers=2, per_worker=4,
                                      endpoint_type="async", update_if_exists=True)
    ep.predict({"inputs": [[5.1, 3.5, 1.4, 0.2]]})
    ep.predict_async({"inputs": [[5.1, 3.5, 1.4, 0.2]]}).result(timeout=60)

Every Podium endpoint serves every mode (sync `predict`, streaming, async tasks), so
`endpoint_type` is checked (sync, streaming or async) and kept as the label `endpoint-type`,
and changes nothing else. `model_bundle` is a Podium model reference (`iris`, `iris:2`,
`hf://org/name`). `cpus`, `memory` (`"4Gi"` or MiB), `gpus` and `gpu_type` are the replica's
`resources`; left out, the server's default instance type sizes it (Launch's defaults, 3 CPUs
and 8 GiB, would not fit many machines Podium runs on). `min_workers`/`max_workers` are the
replica bounds and `per_worker` the autoscaler's `target_concurrency`.
`update_if_exists=True` makes `create_model_endpoint` an upsert: an endpoint of that name is
changed in the fields given (as `edit_model_endpoint`), else created; when another caller
creates it between the look-up and the create (the create's `Conflict`), it is updated, once.
Without it an existing name is a `Conflict`. An endpoint being deleted cannot be updated: that
`Conflict` is raised as it is.
"""

from __future__ import annotations

from typing import Any

from podium.client._client import PodiumClient
from podium.client._shapes import create_body, default_client, update_body
from podium.client._tasks import Endpoint
from podium.core.errors import Conflict, Invalid, NotFound, PodiumError
from podium.core.schemas import EndpointPublic

ENDPOINT_TYPES = ("sync", "streaming", "async")
ENDPOINT_TYPE_LABEL = "endpoint-type"


class ModelEndpoint(Endpoint):
    """A Launch-shaped endpoint: `predict(request)`, `predict_async(request)` → a
    `TaskFuture` (`.result(timeout)`), and `model_endpoint`, the `EndpointPublic` it was
    made from (`status()` reads it again)."""

    def __init__(self, view: EndpointPublic, podium: PodiumClient) -> None:
        project = None if view.project == "default" else view.project
        super().__init__(podium, view.name, project)
        self.podium = podium
        self.model_endpoint = view

    @property
    def endpoint_type(self) -> str:
        return self.model_endpoint.spec.labels.get(ENDPOINT_TYPE_LABEL, "sync")

    def status(self) -> str:
        """The endpoint's status now (Podium's: running, scaled_to_zero, …)."""
        self.model_endpoint = self.podium.endpoint(self.name, project=self.project)
        return self.model_endpoint.status.value

    def __repr__(self) -> str:
        return f"ModelEndpoint({self.name!r}, project={self.project!r})"


def _launch_fields(
    *,
    model_bundle: str | None,
    cpus: float | None,
    memory: str | int | None,
    gpus: int | None,
    gpu_type: str | None,
    min_workers: int | None,
    max_workers: int | None,
    per_worker: float | None,
    endpoint_type: str | None,
    labels: dict[str, str] | None,
    env: dict[str, Any] | None,
    framework: str | None,
) -> dict[str, Any]:
    if endpoint_type is not None and endpoint_type not in ENDPOINT_TYPES:
        raise Invalid(
            f"{endpoint_type!r} is not an endpoint type: use sync, streaming or async",
            field="endpoint_type",
        )
    if endpoint_type is not None:
        labels = {**(labels or {}), ENDPOINT_TYPE_LABEL: endpoint_type}
    return {
        "model": model_bundle,
        "framework": framework,
        "labels": labels,
        "env": env,
        "resources": {"cpus": cpus, "memory": memory, "gpus": gpus, "gpu_type": gpu_type},
        "scaling": {
            "min_replicas": min_workers,
            "max_replicas": max_workers,
            "target_concurrency": per_worker,
        },
    }


def create_model_endpoint(
    endpoint_name: str,
    model_bundle: str,
    cpus: float | None = None,
    memory: str | int | None = None,
    gpus: int | None = None,
    min_workers: int | None = None,
    max_workers: int | None = None,
    per_worker: float | None = None,
    gpu_type: str | None = None,
    endpoint_type: str | None = None,
    update_if_exists: bool = False,
    labels: dict[str, str] | None = None,
    *,
    env: dict[str, Any] | None = None,
    framework: str | None = None,
    project: str | None = None,
    client: PodiumClient | None = None,
    url: str | None = None,
    token: str | None = None,
) -> ModelEndpoint:
    """Create the endpoint (see the module doc for the arguments; `endpoint_type` default
    sync); with `update_if_exists=True`, change it instead when it exists, in the
    arguments given only."""
    podium = default_client(client, url=url, token=token)
    fields = _launch_fields(
        model_bundle=model_bundle,
        cpus=cpus,
        memory=memory,
        gpus=gpus,
        gpu_type=gpu_type,
        min_workers=min_workers,
        max_workers=max_workers,
        per_worker=per_worker,
        endpoint_type=endpoint_type,
        labels=labels,
        env=env,
        framework=framework,
    )
    if update_if_exists:
        try:
            return _update_existing(podium, endpoint_name, fields, project)
        except NotFound:
            pass
    made = fields
    if endpoint_type is None:
        made = {**fields, "labels": {**(labels or {}), ENDPOINT_TYPE_LABEL: ENDPOINT_TYPES[0]}}
    body = create_body(name=endpoint_name, project=project, **made)
    try:
        return ModelEndpoint(podium.deploy(body), podium)
    except Conflict as e:
        if not update_if_exists or not _already_exists(e):
            raise
        # Made by someone else between the look-up and the create: update it (once); if
        # that fails too, the create's refusal is the error the caller asked about.
        try:
            return _update_existing(podium, endpoint_name, fields, project)
        except PodiumError:
            raise e from None


def _already_exists(error: Conflict) -> bool:
    """Whether a create's 409 is the name taken (`store/endpoints.py`): not a quota refusal
    (`QuotaExceeded`) nor any other conflict."""
    return type(error) is Conflict and error.field == "name"


def _update_existing(
    podium: PodiumClient, name: str, fields: dict[str, Any], project: str | None
) -> ModelEndpoint:
    """The upsert's update: the arguments given, over the endpoint's spec (NotFound when
    there is none)."""
    current = podium.endpoint(name, project=project)
    body = update_body(current.spec, **_kept_type(fields, current))
    return ModelEndpoint(podium.update(name, body, project=project), podium)


def edit_model_endpoint(
    model_endpoint: str | ModelEndpoint,
    model_bundle: str | None = None,
    cpus: float | None = None,
    memory: str | int | None = None,
    gpus: int | None = None,
    min_workers: int | None = None,
    max_workers: int | None = None,
    per_worker: float | None = None,
    gpu_type: str | None = None,
    endpoint_type: str | None = None,
    labels: dict[str, str] | None = None,
    *,
    env: dict[str, Any] | None = None,
    framework: str | None = None,
    project: str | None = None,
    client: PodiumClient | None = None,
    url: str | None = None,
    token: str | None = None,
) -> ModelEndpoint:
    """Change the fields given; the others keep their value (a new revision rolls out when
    the model, resources or env changed)."""
    podium = default_client(client, url=url, token=token)
    name, project = _named(model_endpoint, project)
    fields = _launch_fields(
        model_bundle=model_bundle,
        cpus=cpus,
        memory=memory,
        gpus=gpus,
        gpu_type=gpu_type,
        min_workers=min_workers,
        max_workers=max_workers,
        per_worker=per_worker,
        endpoint_type=endpoint_type,
        labels=labels,
        env=env,
        framework=framework,
    )
    current = podium.endpoint(name, project=project)
    body = update_body(current.spec, **_kept_type(fields, current))
    return ModelEndpoint(podium.update(name, body, project=project), podium)


def get_model_endpoint(
    endpoint_name: str,
    *,
    project: str | None = None,
    client: PodiumClient | None = None,
    url: str | None = None,
    token: str | None = None,
) -> ModelEndpoint:
    """The endpoint `endpoint_name` (`NotFound` when there is none)."""
    podium = default_client(client, url=url, token=token)
    return ModelEndpoint(podium.endpoint(endpoint_name, project=project), podium)


def list_model_endpoints(
    *,
    project: str | None = None,
    client: PodiumClient | None = None,
    url: str | None = None,
    token: str | None = None,
) -> list[ModelEndpoint]:
    """The endpoints of `project`, or of every project the token may read (None)."""
    podium = default_client(client, url=url, token=token)
    return [ModelEndpoint(ep, podium) for ep in podium.endpoints(project=project)]


def delete_model_endpoint(
    model_endpoint: str | ModelEndpoint,
    *,
    project: str | None = None,
    client: PodiumClient | None = None,
    url: str | None = None,
    token: str | None = None,
) -> bool:
    """Delete the endpoint; True once the server took the request (Launch's answer)."""
    podium = default_client(client, url=url, token=token)
    name, project = _named(model_endpoint, project)
    podium.delete(name, project=project)
    return True


def _kept_type(fields: dict[str, Any], current: EndpointPublic) -> dict[str, Any]:
    """New labels replace the old ones, but keep the endpoint type unless it is given."""
    kept = current.spec.labels.get(ENDPOINT_TYPE_LABEL)
    labels = fields["labels"]
    if labels is not None and kept is not None and ENDPOINT_TYPE_LABEL not in labels:
        fields = {**fields, "labels": {**labels, ENDPOINT_TYPE_LABEL: kept}}
    return fields


def _named(model_endpoint: str | ModelEndpoint, project: str | None) -> tuple[str, str | None]:
    if isinstance(model_endpoint, ModelEndpoint):
        return model_endpoint.name, model_endpoint.project
    return model_endpoint, project
