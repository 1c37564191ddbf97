"""Checks shared by the endpoint and model services (no HTTP here)."""

from __future__ import annotations

from collections.abc import Collection

from podium.backends.resources import node_capacity
from podium.core.access import DEFAULT_PROJECT, PROJECT_SEPARATOR, endpoint_key
from podium.core.env_spec import missing_required
from podium.core.errors import Invalid, NotFound
from podium.core.resources_spec import check_fits
from podium.core.settings import Settings
from podium.core.spec import EndpointCreate, EndpointSpec, HfRef, parse_model_ref
from podium.runtimes.registry import known_runtimes
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
    `hf://` refs are returned as given: the controller pins them."""
    parsed = parse_model_ref(ref)
    if isinstance(parsed, HfRef):
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
    (or are in `known_secrets`: an apply creates them first)."""
    if spec.framework is not None:
        check_framework(spec.framework)
    check_size(settings, spec)
    check_required_env(spec)
    check_secret_refs(uow, spec, known_secrets)


def check_size(settings: Settings, spec: EndpointCreate) -> None:
    """A known instance type, or `resources` within what this node has (422 naming
    `resources.cpus|memory|gpus`)."""
    settings.replica_size(spec)
    if spec.resources is not None:
        check_fits(spec.resources, node_capacity())


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


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
