"""Registry credentials for a pull: the value of a container endpoint's `registry_secret`.

The secret holds either `USER:PASSWORD` or JSON `{"username": …, "password": …,
"registry": …}` (`registry` defaults to the image's own registry: the part before the
first `/` of `core.container_spec.qualified(image)`, the reference the pull names: the
first component when it has a dot, a port or is `localhost`, else Docker Hub). For one pull, the
credentials are written to a private auth file (0600, in a 0700 temporary folder under the
server's run dir) that the engine reads: `--authfile FILE` for podman, `DOCKER_CONFIG=DIR`
for docker. The folder is removed when the pull ends, whatever happened. Nothing of the
credentials reaches an argv, a log line or an error: `redact` takes them out of the
engine's messages before they are shown.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from podium.core.container_spec import DOCKER_HUB, qualified
from podium.core.errors import LoadError

FIELD = "container.registry_secret"
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # how docker's config.json names Docker Hub
REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class RegistryLogin:
    """One registry's user name and password (never in a repr)."""

    registry: str
    username: str = field(repr=False)
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PullAuth:
    """What a pull adds to the engine's command: flags (podman) or environment (docker)."""

    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def image_registry(image: str) -> str:
    """The registry the engine pulls `image` from: the first component of
    `qualified(image)` ("ghcr.io", "127.0.0.1:5000"; Docker Hub, "docker.io", for
    "vllm/vllm-openai:latest"), the same reference the pull names."""
    return qualified(image).partition("/")[0]


def parse_login(value: str, image: str) -> RegistryLogin:
    """The secret's value as a login; `LoadError` naming `container.registry_secret` (never
    quoting the value) when it is neither form."""
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise LoadError(
                "the registry secret is not valid JSON; write USER:PASSWORD or "
                '{"username": ..., "password": ..., "registry": ...}',
                field=FIELD,
            ) from None
        user, password = data.get("username"), data.get("password")
        registry = data.get("registry") or image_registry(image)
        if not (isinstance(user, str) and user and isinstance(password, str) and password):
            raise LoadError(
                "the registry secret's JSON needs a `username` and a `password`", field=FIELD
            )
        if not isinstance(registry, str):
            raise LoadError("the registry secret's `registry` must be a string", field=FIELD)
        return RegistryLogin(registry=registry, username=user, password=password)
    user, colon, password = text.partition(":")
    if not colon or not user or not password:
        raise LoadError(
            "the registry secret must be USER:PASSWORD or JSON with username and password",
            field=FIELD,
        )
    return RegistryLogin(registry=image_registry(image), username=user, password=password)


def auth_json(login: RegistryLogin, engine: str) -> str:
    """The auth file's text: `{"auths": {REGISTRY: {"auth": base64(user:password)}}}`
    (docker names Docker Hub by its v1 address)."""
    token = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
    key = login.registry
    if engine == "docker" and key == DOCKER_HUB:
        key = _DOCKER_HUB_KEY
    return json.dumps({"auths": {key: {"auth": token}}})


@contextmanager
def pull_auth(login: RegistryLogin | None, engine: str, run_dir: Path) -> Iterator[PullAuth]:
    """The flags or environment that give one pull `login` (nothing for None); the private
    auth file exists only inside the `with` block."""
    if login is None:
        yield PullAuth()
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="registry-auth-", dir=run_dir))  # 0700
    try:
        name = "config.json" if engine == "docker" else "auth.json"
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(auth_json(login, engine))
        if engine == "docker":
            yield PullAuth(env={"DOCKER_CONFIG": str(folder)})
        else:
            yield PullAuth(args=("--authfile", str(path)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def redact(text: str, login: RegistryLogin | None) -> str:
    """`text` with the login's password, its base64 form and its user:password taken out."""
    if login is None:
        return text
    pair = f"{login.username}:{login.password}"
    for secret in (pair, base64.b64encode(pair.encode()).decode(), login.password):
        text = text.replace(secret, REDACTED)
    return text
