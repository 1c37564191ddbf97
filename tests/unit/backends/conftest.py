"""Fixtures for the local backend tests: settings under tmp_path, a backend closed afterwards,
and a stand-in interpreter that runs tests/unit/backends/fake_replica.py.

The tests drive the backend from their own thread: `SyncLocal` is the real `LocalBackend`
whose async methods each run to their end in an event loop of their own (what the
controller awaits), so the tests read as the sequence of calls they make."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from podium.backends.base import ModelSource, ObservedReplica, ReplicaLaunch
from podium.backends.local import LocalBackend
from podium.core.settings import Settings
from podium.core.spec import InstanceType

T = TypeVar("T")
DEADLINE_S = 60.0
SMALL = InstanceType(name="cpu-small", cpus=1, memory_mb=2048)
FAKE_REPLICA = Path(__file__).with_name("fake_replica.py")


class SyncLocal:
    """A `LocalBackend` called from a test's thread (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.backend = LocalBackend(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.backend, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: asyncio.run(attr(*a, **k))
        return attr


def model_at(path: Path, ref: str = "demo:1") -> ModelSource:
    """A repository model whose files are at `path` (no digest: not checked)."""
    return ModelSource(ref=ref, location=str(path))


def wait_for(fn: Callable[[], T | None], what: str, timeout: float = DEADLINE_S) -> T:
    """Call `fn` until it returns something truthy; fail after a generous deadline."""
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_exits(backend: SyncLocal, *replica_ids: str) -> dict[str, ObservedReplica]:
    """Poll until the backend has reported each replica's exit (once); check they are then
    forgotten."""
    reports: dict[str, ObservedReplica] = {}

    def all_exited() -> bool:
        for r in backend.poll():
            if not r.alive:
                assert r.replica_id not in reports, "an exit is reported once"
                reports[r.replica_id] = r
        return set(replica_ids) <= set(reports)

    wait_for(all_exited, f"{', '.join(replica_ids)} to exit")
    assert not set(replica_ids) & {r.replica_id for r in backend.poll()}
    return reports


def wait_exit(backend: SyncLocal, replica_id: str) -> ObservedReplica:
    return wait_exits(backend, replica_id)[replica_id]


def launch(
    replica_id: str,
    model_path: Path,
    *,
    runtime: str = "python",
    instance_type: InstanceType = SMALL,
    env: dict[str, str] | None = None,
    **kwargs: object,
) -> ReplicaLaunch:
    return ReplicaLaunch(
        replica_id=replica_id,
        endpoint="demo",
        revision=1,
        runtime=runtime,
        model=model_at(model_path),
        instance_type=instance_type,
        env=env or {},
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def backend(settings: Settings) -> Iterator[SyncLocal]:
    b = SyncLocal(settings)
    yield b
    b.close()


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    """An 'interpreter' whose `-m podium.replica …` runs fake_replica.py with those args."""
    script = tmp_path / "fake-python"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_REPLICA}" "$@"\n')
    script.chmod(0o755)
    return str(script)
