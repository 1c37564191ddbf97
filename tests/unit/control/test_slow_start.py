"""A slow replica start never holds up the controller pass (issue 10).

Endpoint "slow" has a start that blocks (a backend whose start waits, in real time, until
the test lets it go, at most 20 s) while endpoint "spin" loses a replica: spin's replacement
is started, found ready and routed while slow's start is still blocked, and slow still
comes up once its start returns. If the pass awaited starts, the first pass would sit in
slow's start for 20 s and spin would be replaced only after it (the order asserted here).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from podium.backends.base import (
    ModelSource,
    ObservedReplica,
    Preparation,
    Readiness,
    ReplicaLaunch,
)
from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind
from podium.core.spec import EndpointSpec
from podium.store import Database
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, events, sqlite_url

__all__ = ["db", "sqlite_url"]

BLOCK_S = 20.0  # the most a slow start blocks (only reached when the pass waits for it)


class SlowBackend(FakeBackend):
    """Starts of endpoint "slow" block until `release` is set (or `BLOCK_S` passes)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.slow_entered = threading.Event()
        self.released_before_return: list[bool] = []

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        if launch.endpoint == "slow":  # a start awaited as a remote backend's would be
            self.slow_entered.set()
            released = await asyncio.to_thread(self.release.wait, BLOCK_S)
            self.released_before_return.append(released)
        return await super().start(launch)


class SlowSourceBackend(FakeBackend):
    """The model of endpoint "slow" takes up to `BLOCK_S` to fetch (a source that sleeps):
    `prepare` answers FETCHING, with progress, until the test lets the fetch end. A pass
    that waited for a model would sit here for 20 s."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.asked: list[str] = []

    async def prepare(self, model: ModelSource) -> Preparation:
        if model.ref != "big:1":
            return Preparation.ready()
        self.asked.append(model.ref)
        if self.release.is_set():
            return Preparation(Readiness.READY, label=model.ref, bytes_done=4 << 20)
        return Preparation(
            Readiness.FETCHING, label=model.ref, bytes_done=1 << 20, bytes_total=4 << 20
        )


def add_slow(db: Database, replicas: int = 1, model: str = "bundle") -> None:
    if model != "bundle":
        with db.unit_of_work() as uow:
            uow.models.add_version(
                model,
                framework="python",
                sha256="1" * 64,
                size_bytes=4 << 20,
                files=1,
                source="test",
                path="/nonexistent",
            )
    spec = EndpointSpec.model_validate(
        {
            "name": "slow",
            "model": f"{model}:1",
            "framework": "python",
            "scaling": {"min_replicas": replicas, "max_replicas": replicas},
        }
    )
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec, model_ref=f"{model}:1", status=EndpointStatus.PENDING, desired_replicas=replicas
        )


def routed(h: Harness, name: str) -> list[str]:
    route = h.holder.table.endpoints.get(name)
    return sorted(r.replica_id for r in route.replicas) if route else []


def status_of(db: Database, name: str) -> EndpointStatus:
    with db.unit_of_work(read_only=True) as uow:
        return uow.endpoints.get(name).status


def test_a_blocked_start_does_not_stop_another_endpoints_replacement(
    tmp_path: Path, db: Database
) -> None:
    add_slow(db)
    h = Harness(tmp_path, db, FakeReplicas())
    backend = SlowBackend()
    h.backend = backend

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)  # spin's two replicas start and are probed ready
        assert backend.slow_entered.is_set()
        assert len(routed(h, "spin")) == 2
        assert status_of(db, "spin") is EndpointStatus.RUNNING
        # slow's start is in flight: starting for the plan, nothing started twice
        assert status_of(db, "slow") is EndpointStatus.INITIALIZING
        assert [b.replica_ids for b in ctl.state.starts.pending("slow")] != []
        assert not any(r.endpoint == "slow" for r in ctl.state.replicas.values())

        victim = routed(h, "spin")[0]
        backend.crash(victim)
        for _ in range(10):  # the crash, 1 s backoff, the restart, its readiness
            await h.passes(ctl, 1)
            spin = routed(h, "spin")
            if len(spin) == 2 and victim not in spin:
                break
        spin = routed(h, "spin")
        assert victim not in spin and len(spin) == 2, spin
        assert len(events(db, EventKind.REPLICA_RESTARTED)) == 1
        # ... all while slow's start was still blocked
        assert not backend.release.is_set()
        assert backend.released_before_return == []
        assert routed(h, "slow") == []

        backend.release.set()
        for _ in range(20):
            await h.passes(ctl, 1)
            if routed(h, "slow"):
                break
        assert backend.released_before_return == [True]
        assert len(routed(h, "slow")) == 1
        assert status_of(db, "slow") is EndpointStatus.RUNNING
        assert [b for b in ctl.state.starts.pending("slow")] == []
        assert sum(1 for launch in backend.started if launch.endpoint == "slow") == 1

    h.run(steps)


def test_a_slow_model_source_does_not_stop_another_endpoints_replacement(
    tmp_path: Path, db: Database
) -> None:
    """The issue's case: "slow"'s model takes long to resolve while "spin" loses a replica.
    spin's replacement is ready and routed within its usual passes, slow's status shows the
    fetch's progress meanwhile, and slow comes up once its model is there."""
    add_slow(db, model="big")
    h = Harness(tmp_path, db, FakeReplicas())
    backend = SlowSourceBackend()
    h.backend = backend

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)
        assert backend.asked, "the controller never asked for slow's model"
        assert len(routed(h, "spin")) == 2
        with db.unit_of_work(read_only=True) as uow:
            slow = uow.endpoints.get("slow")
        assert slow.status is EndpointStatus.INITIALIZING
        assert slow.status_reason is not None and "25%" in slow.status_reason, slow
        assert not any(launch.endpoint == "slow" for launch in backend.started)

        victim = routed(h, "spin")[0]
        backend.crash(victim)
        for _ in range(10):  # the crash, 1 s backoff, the restart, its readiness
            await h.passes(ctl, 1)
            spin = routed(h, "spin")
            if len(spin) == 2 and victim not in spin:
                break
        spin = routed(h, "spin")
        assert victim not in spin and len(spin) == 2, spin
        assert routed(h, "slow") == [] and not backend.release.is_set()

        backend.release.set()  # the fetch ends
        for _ in range(20):
            await h.passes(ctl, 1)
            if routed(h, "slow"):
                break
        assert len(routed(h, "slow")) == 1
        assert status_of(db, "slow") is EndpointStatus.RUNNING
        assert sum(1 for launch in backend.started if launch.endpoint == "slow") == 1

    h.run(steps)


def test_starts_no_longer_wanted_are_skipped_or_stopped(tmp_path: Path, db: Database) -> None:
    """slow wants two replicas: one batch, whose first start blocks. The endpoint is paused
    meanwhile: the second start is skipped, the first is stopped once it has returned."""
    add_slow(db, replicas=2)
    h = Harness(tmp_path, db, FakeReplicas())
    backend = SlowBackend()
    h.backend = backend

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 1)
        assert backend.slow_entered.is_set()
        with db.unit_of_work() as uow:
            uow.endpoints.set_status("slow", EndpointStatus.PAUSED)
        await h.passes(ctl, 1)  # the plan stops what slow has: its start is cancelled
        assert status_of(db, "slow") is EndpointStatus.PAUSED
        backend.release.set()
        # Passes until the start has returned, been tracked and been stopped: a deadline,
        # not a count of passes (on a loaded machine the start's thread may take a while
        # to return, and each pass gives it only its settle time).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await h.passes(ctl, 1)
            if not ctl.state.starts.pending("slow") and not any(
                r.endpoint == "slow" for r in ctl.state.replicas.values()
            ):
                break
            await asyncio.sleep(0.05)
        slow = [launch.replica_id for launch in backend.started if launch.endpoint == "slow"]
        assert len(slow) == 1  # the second start of the batch was skipped
        assert [rid for rid, _ in backend.killed] == slow  # stopped by the next plan once tracked
        assert routed(h, "slow") == []
        assert not any(r.endpoint == "slow" for r in ctl.state.replicas.values())

    h.run(steps)
