"""LocalBackend's starts against the controller's loop, with real processes: a start still
under way when the backend closes spawns nothing; `startup` never waits for the table's
lock; starts run on a pool of their own, so a pile of slow ones never holds up `poll`."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import psutil
import pytest

from podium.backends import local as local_module
from podium.backends.base import ModelSource, ObservedReplica, ReplicaStartup
from podium.backends.local import LocalBackend
from podium.control.starts import Batch, BatchResult, Starts
from podium.core.errors import LoadError, Unavailable
from podium.core.settings import Settings
from tests.support.models import write_python_bundle
from tests.unit.backends.conftest import SyncLocal, launch, wait_for

BLOCK_S = 60.0  # a blocked step's own limit, should a test fail before releasing it


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_python_bundle(tmp_path / "bundle")


def _replica_processes(replica_id: str) -> list[psutil.Process]:
    """Every `podium.replica` process of this machine started for `replica_id`."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = p.info["cmdline"] or []
        if "podium.replica" in cmdline and replica_id in cmdline:
            found.append(p)
    return found


def _block_model_lookup(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch, *, then_fail: bool
) -> tuple[threading.Event, threading.Semaphore]:
    """Make each start's model lookup (`ModelCache.path`, the first step of a start's
    thread) wait for the returned gate; the semaphore counts lookups that began. Once
    released, a lookup finds the model as before, or (`then_fail`) raises LoadError."""
    gate, entered = threading.Event(), threading.Semaphore(0)
    real_path = backend.models.path

    def slow_path(model: ModelSource) -> Path:
        entered.release()
        gate.wait(BLOCK_S)
        if then_fail:
            raise LoadError("released by the test")
        return real_path(model)

    monkeypatch.setattr(backend.models, "path", slow_path)
    return gate, entered


async def _until_entered(entered: threading.Semaphore, count: int) -> None:
    """Wait (on the loop, not in a worker thread: those may all be blocked) until `count`
    blocked steps have begun."""
    deadline = time.monotonic() + BLOCK_S
    for _ in range(count):
        while not entered.acquire(blocking=False):
            assert time.monotonic() < deadline, "the blocked steps never began"
            await asyncio.sleep(0.01)


def test_a_start_under_way_when_the_backend_closes_spawns_no_replica(
    settings: Settings, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shutdown order of the server: the controller's `Starts.close` cancels a start
    whose thread is still looking up its model, the controller's loop closes (its executor
    not waited for), then the backend closes. The start's thread goes on afterwards: it must
    refuse (Unavailable) instead of spawning a replica no one knows about."""
    backend = LocalBackend(settings, start_mode="spawn")
    gate, entered = _block_model_lookup(backend, monkeypatch, then_fail=False)
    outcome: list[ObservedReplica | BaseException] = []
    real_start = backend._start

    def recorded_start(work: object) -> ObservedReplica:
        try:
            r = real_start(work)  # type: ignore[arg-type]
        except BaseException as e:
            outcome.append(e)
            raise
        outcome.append(r)
        return r

    monkeypatch.setattr(backend, "_start", recorded_start)
    rid = f"demo-r1-{id(backend):x}"

    async def controller() -> None:
        starts = Starts(lambda _: None)

        async def work(batch: Batch) -> BatchResult:
            return BatchResult(started=[await backend.start(launch(rid, bundle))])

        starts.launch("demo", 1, [rid], decided=0.0, since=0.0, work=work)
        await _until_entered(entered, 1)
        await starts.close(wait_s=0.2)

    loop = asyncio.new_event_loop()  # as the controller's thread runs it (control/loop.py)
    try:
        loop.run_until_complete(controller())
    finally:
        loop.close()
    try:
        asyncio.run(backend.close())  # the server's shutdown, on its own loop
    finally:
        gate.set()
    try:
        wait_for(lambda: outcome, "the blocked start to end")
        assert isinstance(outcome[0], Unavailable), outcome[0]
        assert "closing" in str(outcome[0])
        assert _replica_processes(rid) == []
    finally:
        for p in _replica_processes(rid):  # the old bug: never leave it running
            p.kill()


def test_startup_never_waits_for_the_table_lock(settings: Settings, bundle: Path) -> None:
    """The controller's loop calls `startup` as a plain call; a start holds `_lock` across
    a zygote request (seconds) and `poll` across process-tree walks."""
    backend = SyncLocal(settings, start_mode="spawn")
    try:
        r = backend.start(launch("demo-r1-s", bundle))
        answers: list[ReplicaStartup | None] = []
        with backend.backend._lock:  # a start or a poll under way
            asker = threading.Thread(
                target=lambda: answers.append(backend.startup(r.replica_id)), daemon=True
            )
            asker.start()
            asker.join(5.0)
            answered = not asker.is_alive()
        asker.join()
        assert answered, "startup waited for the table's lock"
        (report,) = answers
        assert report is not None and report.start_mode == "spawn"
        assert backend.startup("demo-r1-nope") is None
    finally:
        backend.close()


def test_poll_is_not_queued_behind_starts(
    settings: Settings, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More blocked starts than the loop's default executor has threads (at most 32): on
    a pool of their own they leave those threads free for `poll`."""
    backend = LocalBackend(settings, start_mode="spawn")
    gate, entered = _block_model_lookup(backend, monkeypatch, then_fail=True)
    many = 40

    async def main() -> list[ObservedReplica | BaseException]:
        tasks = [
            asyncio.create_task(backend.start(launch(f"demo-r1-{i}", bundle))) for i in range(many)
        ]
        try:
            await _until_entered(entered, local_module.START_WORKERS)  # its pool is busy
            polled = await asyncio.wait_for(backend.poll(), timeout=30)
            assert polled == []
        finally:
            gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        gate.set()
        asyncio.run(backend.close())
    assert all(isinstance(r, LoadError) for r in results), results
