"""The `container` block's checks (`core/container_spec.py`): image references that name a
podman transport are refused, every reference reaches the engine fully qualified, and the
block's `env` is held to the rules an env file and a process environment can carry."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from podium.core.container_spec import IMAGE_RE, ContainerSpec, qualified, transport
from podium.core.errors import LoadError
from podium.core.spec import EndpointCreate, EndpointSpec

# Each of these matches the OCI shape (NAME:TAG) and is a transport to podman: it reads a
# folder or a tarball relative to the server's working directory, or another store.
TRANSPORTS = [
    "dir:foo",
    "oci:foo",
    "oci-archive:x.tar",
    "docker-archive:x.tar",
    "docker-daemon:busybox",
    "containers-storage:x",
]


def _create(**block: Any) -> EndpointCreate:
    return EndpointCreate.model_validate(
        {"name": "box", "model": "iris", "framework": "container", "container": block}
    )


def _refusal(**block: Any) -> tuple[str, str]:
    """(dotted location, message) of the one error the block gets."""
    with pytest.raises(ValidationError) as e:
        _create(**block)
    errors = e.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]), str(errors[0]["msg"])


@pytest.mark.parametrize("image", [*TRANSPORTS, "dir:5000/x", "OCI:foo", "docker:dind"])
def test_a_transport_is_refused_naming_the_image(image: str) -> None:
    if image in TRANSPORTS:
        assert IMAGE_RE.match(image)  # the shape alone let them through
    where, message = _refusal(image=image)
    assert where == "container.image"
    assert "transport" in message and "docker.io/library/NAME:TAG" in message


@pytest.mark.parametrize("image", TRANSPORTS)
def test_qualified_never_hands_a_transport_to_the_engine(image: str) -> None:
    """A spec stored before the check still loads; its start fails naming the image."""
    stored = EndpointSpec.model_validate(
        {"name": "box", "model": "iris", "framework": "container", "container": {"image": image}},
        context={"stored": True},
    )
    assert stored.container is not None and stored.container.image == image
    with pytest.raises(LoadError) as e:
        qualified(image)
    assert e.value.field == "container.image" and "transport" in str(e.value)


@pytest.mark.parametrize(
    ("image", "full"),
    [
        ("busybox", "docker.io/library/busybox"),
        ("centos:7", "docker.io/library/centos:7"),  # podman's shortnames.conf: quay.io
        ("vllm/vllm-openai:latest", "docker.io/vllm/vllm-openai:latest"),
        ("a/b/c@sha256:" + "0" * 64, "docker.io/a/b/c@sha256:" + "0" * 64),
        ("docker.io/library/busybox:1", "docker.io/library/busybox:1"),
        ("ghcr.io/org/x:1", "ghcr.io/org/x:1"),
        ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
        ("localhost/podium-test/busybox:1", "localhost/podium-test/busybox:1"),
        ("localhost:5000/x", "localhost:5000/x"),
    ],
)
def test_qualified_spells_out_the_registry(image: str, full: str) -> None:
    assert qualified(image) == full
    assert qualified(full) == full  # idempotent: the plan's image may be qualified already
    assert transport(image) is None


def test_a_docker_hub_image_named_like_a_transport_is_written_in_full() -> None:
    block = _create(image="docker.io/library/docker:dind").container
    assert block is not None and qualified(block.image or "") == "docker.io/library/docker:dind"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"A=B\nPORT": "1"}, "A=B\nPORT"),  # a line of its own in the env file
        ({"A=B": "x"}, "A=B"),  # Popen: "illegal environment variable name"
        ({"1ABC": "x"}, "1ABC"),
        ({"my.var": "x"}, "my.var"),
        ({"": "x"}, ""),
    ],
)
def test_the_blocks_env_names_follow_the_env_from_secrets_rule(
    env: dict[str, str], key: str
) -> None:
    where, message = _refusal(image="busybox", env=env)
    assert where == f"container.env.{key}"
    assert "not a valid environment variable name" in message


@pytest.mark.parametrize("entry", ["a\0b", {"value": "a\0b"}])
def test_a_nul_in_a_value_is_refused_naming_the_variable(entry: Any) -> None:
    where, message = _refusal(image="busybox", env={"TOKEN": entry})
    assert where == "container.env.TOKEN"
    assert "NUL" in message and "a\0b" not in message


def test_good_env_passes_line_breaks_included() -> None:
    block = ContainerSpec(
        image="busybox",
        env={"PEM": "line1\nline2", "_X1": "v", "REQ": {"required": True}},  # type: ignore[dict-item]
    )
    assert set(block.env) == {"PEM", "_X1", "REQ"}


def test_a_stored_block_with_an_old_env_still_loads() -> None:
    stored = ContainerSpec.model_validate(
        {"image": "busybox", "env": {"A=B": "x\0"}}, context={"stored": True}
    )
    assert stored.env == {"A=B": "x\0"}
