"""Pulls (`backends/container_pull.py`) and engine calls (`container_engine.py`) against a
stand-in engine: a shell script that records each call (its arguments and its stdin) and
answers a pull as the test sets it up (podman's own error lines), so every outcome of a
pull is seen without a registry.

What a pull's failure becomes: with `always` and the image on the node, a warning and the
local image; a registry that is not reached, `Unavailable` (the controller retries); the
image or the access wrong, `LoadError` (the endpoint fails)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.backends.container_engine import ContainerEngine
from podium.backends.container_pull import ensure_image
from podium.core.container_spec import PullPolicy
from podium.core.errors import LoadError, Unavailable
from podium.core.settings import ContainerSettings

_ENGINE = """#!/bin/sh
here=$(dirname "$0")
echo "$*" >> "$here/calls"
readlink /proc/self/fd/0 >> "$here/stdin"
case "$1" in
  image)
    if [ -e "$here/present" ]; then echo sha256:abc; exit 0; fi
    echo "Error: $5: image not known" >&2; exit 125 ;;
  pull)
    if [ "$2" = --authfile ]; then cp "$3" "$here/auth.copy"; fi
    if [ -e "$here/pull.hang" ]; then exec sleep 5; fi
    cat "$here/pull.err" >&2 2>/dev/null
    exit "$(cat "$here/pull.rc" 2>/dev/null || echo 0)" ;;
esac
exit 0
"""
REFUSED = (
    "Error: initializing source docker://ghcr.io/org/x:1: pinging container registry "
    'ghcr.io: Get "https://ghcr.io/v2/": dial tcp 140.82.121.33:443: connect: '
    "connection refused"
)
NOT_FOUND = (
    "Error: initializing source docker://ghcr.io/org/x:1: reading manifest 1 in "
    "ghcr.io/org/x: manifest unknown"
)
UNAUTHORIZED = (
    "Error: initializing source docker://ghcr.io/org/x:1: reading manifest 1 in "
    "ghcr.io/org/x: unauthorized: authentication required"
)
TOO_MANY = (
    "Error: initializing source docker://docker.io/library/x:1: reading manifest 1 in "
    "docker.io/library/x: toomanyrequests: You have reached your pull rate limit"
)
NO_HOST = (
    "Error: initializing source docker://ghcr.io/org/x:1: pinging container registry "
    'ghcr.io: Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io: no such host'
)


class Fake:
    """The stand-in engine's folder: what it was asked, and how it answers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.program = folder / "podman"
        self.program.write_text(_ENGINE, encoding="utf-8")
        self.program.chmod(0o755)

    def engine(self, **settings: object) -> ContainerEngine:
        return ContainerEngine(
            name="podman",
            program=str(self.program),
            version="4.3.1",
            settings=ContainerSettings(**settings),  # type: ignore[arg-type]
        )

    def has_image(self) -> None:
        (self.folder / "present").touch()

    def pull_fails(self, line: str, code: int = 125) -> None:
        (self.folder / "pull.err").write_text(line + "\n", encoding="utf-8")
        (self.folder / "pull.rc").write_text(str(code), encoding="utf-8")

    def pull_hangs(self) -> None:
        (self.folder / "pull.hang").touch()

    def calls(self) -> list[str]:
        path = self.folder / "calls"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def stdins(self) -> list[str]:
        return (self.folder / "stdin").read_text(encoding="utf-8").splitlines()


@pytest.fixture
def fake(tmp_path: Path) -> Fake:
    folder = tmp_path / "engine"
    folder.mkdir()
    return Fake(folder)


def test_every_engine_call_names_the_qualified_image(fake: Fake, tmp_path: Path) -> None:
    """A short name is Docker Hub's, for the inspect, the pull and the credentials alike
    (podman would resolve `centos` through its aliases to quay.io)."""
    engine = fake.engine()
    assert ensure_image(engine, "centos:7", PullPolicy.IF_NOT_PRESENT, "bob:pw", tmp_path)
    inspect, pull = fake.calls()
    assert inspect == "image inspect --format {{.Id}} docker.io/library/centos:7"
    assert pull.startswith("pull --authfile ") and pull.endswith(" docker.io/library/centos:7")
    auths = json.loads((fake.folder / "auth.copy").read_text(encoding="utf-8"))["auths"]
    assert list(auths) == ["docker.io"]
    fake.has_image()
    assert not ensure_image(engine, "org/x", PullPolicy.NEVER, None, tmp_path)
    assert fake.calls()[-1] == "image inspect --format {{.Id}} docker.io/org/x"


def test_a_transport_never_reaches_the_engine(fake: Fake, tmp_path: Path) -> None:
    for policy in PullPolicy:
        with pytest.raises(LoadError) as e:
            ensure_image(fake.engine(), "dir:foo", policy, None, tmp_path)
        assert e.value.field == "container.image"
    assert fake.calls() == []


@pytest.fixture
def stdin_is_a_pipe() -> Iterator[None]:
    """The server's stdin, for the test: a pipe nobody writes to (a terminal, in life)."""
    read, write = os.pipe()
    saved = os.dup(0)
    os.dup2(read, 0)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read, write):
            os.close(fd)


@pytest.mark.usefixtures("stdin_is_a_pipe")
def test_engine_calls_read_nothing_from_the_servers_stdin(fake: Fake) -> None:
    engine = fake.engine()
    assert engine.call(["version"]).returncode == 0
    assert engine.call(["load"], input=b"x").returncode == 0  # given input: a pipe of its own
    first, second = fake.stdins()
    assert first == "/dev/null"
    assert second.startswith("pipe:")


def test_always_runs_the_local_image_when_the_pull_fails(
    fake: Fake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.has_image()
    for line in (REFUSED, UNAUTHORIZED):
        fake.pull_fails(line)
        with caplog.at_level(logging.WARNING, logger="podium.backends.container_pull"):
            pulled = ensure_image(
                fake.engine(), "ghcr.io/org/x:1", PullPolicy.ALWAYS, None, tmp_path
            )
        assert not pulled
        assert "image ghcr.io/org/x:1 could not be pulled (pull_policy always)" in caplog.text
        assert "running the image this node has" in caplog.text
        caplog.clear()


@pytest.mark.parametrize("line", [REFUSED, TOO_MANY, NO_HOST])
@pytest.mark.parametrize("policy", [PullPolicy.ALWAYS, PullPolicy.IF_NOT_PRESENT])
def test_an_unreachable_registry_is_unavailable(
    fake: Fake, tmp_path: Path, line: str, policy: PullPolicy
) -> None:
    fake.pull_fails(line)
    with pytest.raises(Unavailable) as e:
        ensure_image(fake.engine(), "ghcr.io/org/x:1", policy, None, tmp_path)
    assert e.value.field == "container.image"
    assert str(e.value).startswith(
        f"image ghcr.io/org/x:1 could not be pulled (pull_policy {policy.value}): "
    )
    assert line.rsplit(": ", 1)[-1] in str(e.value)


def test_a_pull_that_does_not_end_in_time_is_unavailable(fake: Fake, tmp_path: Path) -> None:
    fake.pull_hangs()
    engine = fake.engine(pull_timeout_s=0.5)
    with pytest.raises(Unavailable) as e:
        ensure_image(engine, "ghcr.io/org/x:1", PullPolicy.ALWAYS, None, tmp_path)
    assert "did not answer within 0.5s" in str(e.value)


@pytest.mark.parametrize("line", [NOT_FOUND, UNAUTHORIZED])
@pytest.mark.parametrize("policy", [PullPolicy.ALWAYS, PullPolicy.IF_NOT_PRESENT])
def test_a_missing_image_or_refused_access_is_a_load_error(
    fake: Fake, tmp_path: Path, line: str, policy: PullPolicy
) -> None:
    fake.pull_fails(line)
    with pytest.raises(LoadError) as e:
        ensure_image(fake.engine(), "ghcr.io/org/x:1", policy, None, tmp_path)
    assert e.value.field == "container.image"
    assert str(e.value).endswith(line.rsplit(": ", 1)[-1])


def test_never_with_a_missing_image_names_it(fake: Fake, tmp_path: Path) -> None:
    with pytest.raises(LoadError) as e:
        ensure_image(fake.engine(), "x", PullPolicy.NEVER, None, tmp_path)
    assert str(e.value) == "image docker.io/library/x is not on this node and pull_policy is never"
    assert not any(c.startswith("pull") for c in fake.calls())
