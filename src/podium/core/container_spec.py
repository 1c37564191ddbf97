"""The `container` block of an endpoint spec: bring your own OCI image.

An endpoint with `framework: container` runs the image as its replica: Podium starts one
container per replica with the container engine it finds on the node (podman, or docker
where its daemon answers; `backends.container_engine`), mounts the model's files read-only
at `model_mount` (`/repository` by default, as Hugging Face custom images expect), gives the
server its port in `PORT` and publishes that port on 127.0.0.1 only, and probes
`health_route` like any replica. A server preset (vllm, tgi, …) may carry a `container`
block too: it then runs the preset's official image (or `image`) instead of a program
installed on the host (`runtimes.presets.Preset.image`).

`image` is an OCI reference (`[registry/]repository[:tag][@sha256:digest]`), checked here
for shape only; whether it exists is the engine's answer at start (`pull_policy`). A
reference that starts with a podman transport (`dir:`, `oci-archive:`, `docker-daemon:` …)
is refused: podman would read it from the server's disk or another store, not a registry.
The engine only ever sees `qualified(image)`, the reference with its registry spelled out
(`busybox` → `docker.io/library/busybox`), so podman's short-name aliases and search
registries never choose where an image comes from, and the registry the credentials are
for is the one pulled from.
`registry_secret` names a secret of the endpoint's project holding registry credentials
(`backends.container_auth`): its value never reaches a log, an event or an answer.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, NoReturn

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from podium.core.bounds import AtMost, is_stored
from podium.core.env_spec import Env, EnvVar
from podium.core.errors import LoadError
from podium.core.ids import NAME_RE, NAME_RULE

MAX_IMAGE_CHARS = 512
MAX_ARGS = 256
MAX_ARG_CHARS = 4096
DEFAULT_PORT = 8080
DEFAULT_MODEL_MOUNT = "/repository"
CONTAINER_FRAMEWORK = "container"

# [registry[:port]/]path[:tag][@sha256:hex]; lowercase path components as the OCI
# distribution spec names them, a tag of at most 128 characters.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*(?::[0-9]{1,5})?/)"
IMAGE_RE = re.compile(
    rf"^{_REGISTRY}?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
# The transports of containers/image (podman, skopeo): `TRANSPORT:…` is read through that
# transport (a local folder, a tarball, another store) instead of a registry.
TRANSPORTS = frozenset(
    {
        "containers-storage",
        "dir",
        "docker",
        "docker-archive",
        "docker-daemon",
        "oci",
        "oci-archive",
        "ostree",
        "sif",
        "tarball",
    }
)
DOCKER_HUB = "docker.io"
# An environment variable's name: the rule of `env_from_secrets` (`core.spec`). The block's
# `env` goes into an env file (one `KEY=VALUE` a line) and the engine client's environment,
# so a name with `=` or a line break, or a value with a NUL, cannot be carried.
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MOUNT = re.compile(r"^/[A-Za-z0-9._/-]*$")
_ROUTE = re.compile(r"^/[A-Za-z0-9._~/%-]*$")


def transport(image: str) -> str | None:
    """The transport `image` names (`dir` for `dir:foo`, `dir:5000/x` too), else None."""
    head, colon, _ = image.partition(":")
    if colon and "/" not in head and head.lower() in TRANSPORTS:
        return head
    return None


def qualified(image: str) -> str:
    """`image` with its registry spelled out: the reference every engine call gets (pull,
    inspect, run) and the one the registry credentials are matched to. A first component
    with a dot or a port, or `localhost`, is a registry and is kept; otherwise the image is
    Docker Hub's: `docker.io/ORG/NAME` for `ORG/NAME`, `docker.io/library/NAME` for `NAME`
    (what docker means by them; podman would ask its short-name aliases and search
    registries). `LoadError` naming `container.image` for a transport reference, which the
    spec refuses (a stored spec from before that check may hold one)."""
    name = transport(image)
    if name is not None:
        raise LoadError(_transport_message(image, name), field="container.image")
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return image
    if slash:
        return f"{DOCKER_HUB}/{image}"
    return f"{DOCKER_HUB}/library/{image}"


def _transport_message(image: str, name: str) -> str:
    return (
        f"{image!r} names podman's {name}: transport, not an image in a registry: "
        "write [REGISTRY/]NAME[:TAG], e.g. docker.io/library/NAME:TAG for an image of "
        "Docker Hub"
    )


def _refuse(key: str, message: str) -> NoReturn:
    """A 422 naming `env.KEY` inside the block (`container.env.KEY`), as the endpoint's own
    `env` entries are named: a field validator's own error would name only `env`."""
    error = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=(key,), input=key
    )
    raise ValidationError.from_exception_data("env", [error])


class PullPolicy(enum.StrEnum):
    """When the engine pulls the image before a replica starts."""

    ALWAYS = "always"  # every start pulls (a moving tag is refreshed)
    IF_NOT_PRESENT = "if_not_present"  # pull only when the node does not have it
    NEVER = "never"  # the image must be on the node already; a missing one fails the start


class ContainerSpec(BaseModel):
    """Run an OCI image as the replica (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: Annotated[str, AtMost(MAX_IMAGE_CHARS)] | None = Field(
        None,
        description="OCI image, e.g. ghcr.io/org/server:1.2; for a preset: default its own",
    )
    command: Annotated[list[Annotated[str, AtMost(MAX_ARG_CHARS)]], AtMost(MAX_ARGS)] | None = (
        Field(None, description="the image's entrypoint replaced by this (None: the image's)")
    )
    args: Annotated[list[Annotated[str, AtMost(MAX_ARG_CHARS)]], AtMost(MAX_ARGS)] = Field(
        default_factory=list,
        description="arguments ({port} and {model_path} replaced); []: the image's CMD",
    )
    port: int = Field(
        DEFAULT_PORT, ge=1, le=65535, description="the port the server listens on inside"
    )
    health_route: Annotated[str, AtMost(256)] = "/health"
    env: Env = Field(default_factory=dict, description="added to the endpoint's `env`")
    model_mount: Annotated[str, AtMost(256)] = Field(
        DEFAULT_MODEL_MOUNT, description="where the model's files appear (read-only)"
    )
    pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT
    registry_secret: str | None = Field(
        None, description="a secret of the project holding the registry's credentials"
    )

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        name = transport(v)
        if name is not None and not is_stored(info):  # stored: `qualified` refuses it
            raise ValueError(_transport_message(v, name))
        if not IMAGE_RE.match(v):
            raise ValueError(
                f"{v!r} is not an image reference: write [REGISTRY/]NAME[:TAG][@sha256:DIGEST] "
                "(lowercase name)"
            )
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str | EnvVar], info: ValidationInfo) -> dict[str, str | EnvVar]:
        if is_stored(info):
            return v
        for key in v:  # values: `env_spec` (no NUL, bounded)
            if not ENV_KEY_RE.match(key):
                _refuse(key, f"{key!r} is not a valid environment variable name")
        return v

    @field_validator("model_mount")
    @classmethod
    def _mount(cls, v: str) -> str:
        if not _MOUNT.match(v) or ".." in v.split("/") or v == "/":
            raise ValueError(f"{v!r} is not an absolute folder inside the container")
        return v

    @field_validator("health_route")
    @classmethod
    def _route(cls, v: str) -> str:
        if not _ROUTE.match(v):
            raise ValueError(f"{v!r} is not a path (it starts with /)")
        return v

    @field_validator("registry_secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None and not NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a valid secret name: use {NAME_RULE}")
        return v
