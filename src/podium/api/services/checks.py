"""Checks shared by the endpoint and model services (no HTTP here)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection

from podium.backends.container_engine import FIELD as CONTAINER_FIELD
from podium.backends.container_engine import ContainerEngine, find_engine
from podium.backends.ray_backend import RAY_CONTAINER_REFUSAL
from podium.backends.resources import node_capacity
from podium.core.access import DEFAULT_PROJECT, PROJECT_SEPARATOR, endpoint_key
from podium.core.env_spec import missing_required
from podium.core.errors import Invalid, LoadError, NotFound
from podium.core.resources_spec import check_fits, too_few_gpus
from podium.core.settings import (
    S3_SERVER_CREDENTIALS_VAR,
    BackendKind,
    ContainerSettings,
    Settings,
)
from podium.core.spec import (
    EndpointCreate,
    EndpointSpec,
    HfRef,
    InstanceType,
    S3Ref,
    parse_model_ref,
)
from podium.runtimes.registry import known_runtimes
from podium.runtimes.transformers import placement
from podium.store import UnitOfWork


def check_framework(name: str) -> str:
    """`name` if a runtime serves it. Uses the registry's cheap list: no runtime import."""
    known = known_runtimes()
    if name not in known:
        raise Invalid(f"unknown framework {name!r}; known: {', '.join(known)}", field="framework")
    return name


def resolve_model(uow: UnitOfWork, ref: str, project: str = DEFAULT_PROJECT) -> str:
    """A repository ref, resolved within `project`, to the stored `key:version` (`iris:3`,
    `team.iris:3`; latest when no version is given; NotFound, field "model", when absent).
    `hf://` and `s3://` refs are returned as given (normalised): the node that fetches them
    pins what it fetched."""
    parsed = parse_model_ref(ref)
    if isinstance(parsed, HfRef | S3Ref):
        return str(parsed)
    if PROJECT_SEPARATOR in parsed.name:
        raise Invalid(
            f"{ref!r} names a project: a model reference resolves within the endpoint's project",
            field="model",
        )
    key = endpoint_key(project, parsed.name)
    try:
        return uow.models.get(key, parsed.version).ref
    except NotFound as e:
        if project == DEFAULT_PROJECT:
            raise
        message = e.message.replace(repr(key), repr(parsed.name))
        raise NotFound(f"{message} in project {project!r}", field="model") from None


def check_spec(uow: UnitOfWork, settings: Settings, spec: EndpointSpec) -> str:
    """Validate what pydantic cannot (`check_runnable`, the model) and return the resolved
    model ref."""
    check_runnable(uow, settings, spec)
    return resolve_model(uow, spec.model, spec.project)


def check_runnable(
    uow: UnitOfWork,
    settings: Settings,
    spec: EndpointCreate,
    known_secrets: Collection[str] = (),
) -> None:
    """What a created or updated spec must pass besides its model: a framework a runtime
    serves (when the spec names one; else the model version's, checked by its push), a size
    this node can give one replica, a value for every required variable, secrets that exist
    (or are in `known_secrets`: an apply creates them first), a container engine for a
    `container` block."""
    if spec.framework is not None:
        check_framework(spec.framework)
    check_size(settings, spec)
    check_container(settings, spec)
    check_engine_args(spec)
    check_required_env(spec)
    check_s3_keys(settings, spec)
    check_secret_refs(uow, spec, known_secrets)


def check_size(settings: Settings, spec: EndpointCreate) -> None:
    """A known instance type, or `resources` within what this node has (422 naming
    `resources.cpus|memory|gpus`). With the local backend, a named instance type's GPUs
    too (422 naming `instance_type`): a GPU replica on a node without enough GPUs would
    never be placed (it used to run on the CPU without a word). With Ray the cluster has
    the GPUs, not this node: the cluster decides."""
    size = settings.replica_size(spec)
    if spec.resources is not None:
        check_fits(spec.resources, node_capacity())
    elif settings.backend is BackendKind.LOCAL and size.gpus > 0:
        check_gpus(size, node_capacity().gpus)


def check_gpus(size: InstanceType, node_gpus: int) -> None:
    """`Invalid` naming `instance_type` when this node has fewer GPUs than one replica of
    the instance type asks for."""
    if size.gpus > node_gpus:
        raise Invalid(too_few_gpus(size.name, size.gpus, node_gpus), field="instance_type")


def check_engine_args(spec: EndpointCreate) -> None:
    """The transformers runtime's options (`device`, `dtype`) are known values (422 naming
    `engine_args.<key>`); presets check theirs when they build the command line."""
    if spec.framework == "transformers":
        placement.parse(spec.engine_args)


def check_required_env(spec: EndpointCreate) -> None:
    """Every `required` env entry gets a value (422 naming `env.KEY`)."""
    missing = missing_required(spec.env, spec.env_from_secrets)
    if missing:
        key = missing[0]
        raise Invalid(
            f"required variable {key} has no value: give `value` or name a secret in "
            "env_from_secrets",
            field=f"env.{key}",
        )


def check_s3_keys(settings: Settings, spec: EndpointCreate) -> None:
    """An `s3://` model names its keys (`model_source.access_key_secret` and
    `secret_key_secret`) unless the operator let the server's own AWS credentials serve
    every deployer (PODIUM_S3_SERVER_CREDENTIALS): else anyone who may deploy could read
    any bucket the server can, and see its listing in events (a confused deputy)."""
    if settings.download.s3_server_credentials or not isinstance(
        parse_model_ref(spec.model), S3Ref
    ):
        return
    if spec.model_source is None or spec.model_source.access_key_secret is None:
        raise Invalid(
            f"{spec.model} needs S3 keys: name secrets in model_source.access_key_secret and "
            f"secret_key_secret (this server does not lend its own AWS credentials: "
            f"{S3_SERVER_CREDENTIALS_VAR} is off)",
            field="model_source.access_key_secret",
        )


def check_secret_refs(
    uow: UnitOfWork, spec: EndpointCreate, known_secrets: Collection[str] = ()
) -> None:
    """Every secret the spec names exists in its project or is in `known_secrets`; else 422
    naming the spec's field (`env_from_secrets.HF_TOKEN`, `model_source.token_secret`)."""
    for where, name in spec.secret_refs().items():
        if name not in known_secrets and not uow.secrets.exists(spec.project, name):
            raise Invalid(
                f"secret {name!r} does not exist in project {spec.project!r}", field=where
            )


ENGINE_CHECK_TTL_S = 30.0  # a newly installed (or removed) engine is seen within this


class EngineLookup:
    """`find_engine`'s answer (the engine, or its `LoadError`), kept `ttl_s` per container
    settings and PATH, so a deploy's check costs nothing most of the time and an engine
    installed while the server runs is seen within `ttl_s`. Thread-safe (the API's routes
    run in threads)."""

    def __init__(
        self,
        ttl_s: float = ENGINE_CHECK_TTL_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._now = now
        self._lock = threading.Lock()
        self._kept: dict[tuple[ContainerSettings, str], tuple[float, ContainerEngine | str]] = {}

    def engine(self, settings: ContainerSettings) -> ContainerEngine:
        """The engine; `LoadError` naming `container` with `find_engine`'s reason."""
        key = (settings, os.environ.get("PATH", ""))
        with self._lock:
            kept = self._kept.get(key)
        if kept is None or self._now() - kept[0] >= self._ttl_s:
            try:
                answer: ContainerEngine | str = find_engine(settings)
            except LoadError as e:
                answer = e.message
            kept = (self._now(), answer)
            with self._lock:
                self._kept[key] = kept
        if isinstance(kept[1], str):
            raise LoadError(kept[1], field=CONTAINER_FIELD)
        return kept[1]


_ENGINES = EngineLookup()  # the process's; holds nothing until the first container deploy


def check_container(
    settings: Settings, spec: EndpointCreate, engines: EngineLookup | None = None
) -> None:
    """A spec with a `container` block (framework `container`, or a preset run from its
    image) can run here: 422 naming `container` at once, rather than a replica that fails
    later (`container_problem`)."""
    if spec.container is None:
        return
    problem = container_problem(settings.backend, settings.containers, engines)
    if problem is not None:
        raise Invalid(problem, field=CONTAINER_FIELD)


def container_problem(
    backend: BackendKind, containers: ContainerSettings, engines: EngineLookup | None = None
) -> str | None:
    """Why this server cannot run container replicas (None: it can): the Ray backend
    (`RAY_CONTAINER_REFUSAL`), or, with the local backend, no container engine on this node
    (`find_engine`'s reason: this server's node is the one its replicas run on)."""
    if backend is BackendKind.RAY:
        return RAY_CONTAINER_REFUSAL
    try:
        (engines or _ENGINES).engine(containers)
    except LoadError as e:
        return f"this server cannot run container endpoints: {e.message}"
    return None


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
