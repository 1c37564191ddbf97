"""Restart backoff on fake time: the delay before a restart doubles with each crash in a
row up to its cap, and a replica that stays ready for the settle time ends the streak, so
the next crash waits the first delay again."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest

from podium.backends.base import ObservedReplica, ReplicaLaunch
from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind
from podium.store import Database
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, events, sqlite_url, status

__all__ = ["db", "sqlite_url"]

STEP_S = 0.25  # fake seconds per controller pass: every delay below is a multiple of it
FIRST_S, CAP_S = 1.0, 4.0  # restart_backoff_s, restart_backoff_max_s
SETTLE_S = 10.0  # max(10 s, the cap): `exits.settle_s`


class TimedBackend(FakeBackend):
    """Remembers the fake time of every start."""

    def __init__(self, h: Harness) -> None:
        super().__init__()
        self.h = h
        self.started_at: list[float] = []

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        self.started_at.append(self.h.clock.monotonic())
        return await super().start(launch)


def harness(tmp_path: Path, db: Database, probes: FakeReplicas, desired: int) -> Harness:
    h = Harness(tmp_path, db, probes)
    h.backend = TimedBackend(h)
    h.control = replace(
        h.control,
        restart_backoff_s=FIRST_S,
        restart_backoff_max_s=CAP_S,
        crash_loop_threshold=100,  # never fails here: only the delays are looked at
    )
    with db.unit_of_work() as uow:
        uow.endpoints.set_desired("spin", desired)
    return h


async def step(h: Harness, ctl: Controller, n: int = 1) -> None:
    for _ in range(n):
        h.clock.advance(STEP_S)
        await ctl.run_once()


async def crash_each_start(h: Harness, ctl: Controller, crashes: int) -> None:
    """Every replica crashes right after it starts (before it is ready), `crashes` times."""
    backend = h.backend
    assert isinstance(backend, TimedBackend)
    done = 0
    for _ in range(int(120 / STEP_S)):  # bounded: a loop that stops restarting fails below
        if done >= crashes:
            break
        for rid in backend.live(1):
            if not ctl.state.replicas[rid].was_ready:
                backend.crash(rid)
                done += 1
        await step(h, ctl)
    assert done == crashes, f"only {done} of {crashes} starts came"
    await until_started(h, ctl, len(backend.started) + 1)  # the last restart is timed too


async def until_started(h: Harness, ctl: Controller, starts: int) -> None:
    """Passes until the backend has started `starts` replicas (at most a minute of fake
    time: a restart that never comes shows up as a missing delay)."""
    for _ in range(int(60 / STEP_S)):
        if len(h.backend.started) >= starts:
            return
        await step(h, ctl)


def delays(starts: list[float]) -> list[float]:
    """The backoff before each restart: the gap between two starts, less the one step
    between a crash and the pass that sees it."""
    return [round(b - a - STEP_S, 3) for a, b in pairwise(starts)]


def test_backoff_doubles_up_to_its_cap(tmp_path: Path, db: Database) -> None:
    h = harness(tmp_path, db, FakeReplicas(refuse_all=True), desired=1)

    async def steps(ctl: Controller) -> None:
        await step(h, ctl)
        await crash_each_start(h, ctl, 6)

    h.run(steps)
    assert isinstance(h.backend, TimedBackend)
    assert delays(h.backend.started_at) == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert len(events(db, EventKind.REPLICA_CRASHED)) == 6
    assert len(events(db, EventKind.REPLICA_RESTARTED)) == 6
    assert status(db) is not EndpointStatus.FAILED


@pytest.mark.parametrize(
    ("ready_for", "next_delay"),
    [(SETTLE_S - 4 * STEP_S, CAP_S), (SETTLE_S, FIRST_S)],
    ids=["short of the settle time: the streak goes on", "settled: the streak ends"],
)
def test_a_healthy_period_ends_the_crash_streak(
    tmp_path: Path, db: Database, ready_for: float, next_delay: float
) -> None:
    probes = FakeReplicas()
    h = harness(tmp_path, db, probes, desired=1)

    async def steps(ctl: Controller) -> None:
        backend = h.backend
        assert isinstance(backend, TimedBackend)
        await step(h, ctl)
        await crash_each_start(h, ctl, 3)  # delays 1, 2, 4: the next one would be 4 (cap)
        await step(h, ctl, 2)
        (survivor,) = backend.live(1)
        ready_at = ctl.state.replicas[survivor].ready_at
        assert ready_at is not None
        while h.clock.monotonic() - ready_at < ready_for:
            await step(h, ctl)
        # A second replica is wanted; it crashes at start.
        probes.refused.add("r5.test")
        with db.unit_of_work() as uow:
            uow.endpoints.set_desired("spin", 2)
        await step(h, ctl)
        backend.crash(backend.started[4].replica_id)
        await until_started(h, ctl, 6)  # its restart
        assert delays(backend.started_at)[-1] == next_delay

    h.run(steps)


def test_a_healthy_sibling_does_not_cancel_the_backoff_of_a_crash_loop(
    tmp_path: Path, db: Database
) -> None:
    # Regression: a replica ready for longer than the settle time used to end the streak
    # of every later crash in the pass that saw it, so a sibling that crashed at start was
    # restarted at once, forever (delays 0, 0, 0, …): a restart storm.
    probes = FakeReplicas()
    h = harness(tmp_path, db, probes, desired=1)

    async def steps(ctl: Controller) -> None:
        backend = h.backend
        assert isinstance(backend, TimedBackend)
        await step(h, ctl, 2)
        (survivor,) = backend.live(1)
        await step(h, ctl, int(3 * SETTLE_S / STEP_S))  # long settled
        assert h.routed() == ["r1.test"]
        probes.refuse_all = True  # from now on nothing new becomes ready
        ctl.state.replicas[survivor].next_probe = float("inf")  # (the survivor is not asked)
        with db.unit_of_work() as uow:
            uow.endpoints.set_desired("spin", 2)
        await step(h, ctl)
        await crash_each_start(h, ctl, 4)

    h.run(steps)
    assert isinstance(h.backend, TimedBackend)
    assert delays(h.backend.started_at[1:]) == [1.0, 2.0, 4.0, 4.0]


def test_a_crash_loop_beside_a_serving_replica_never_stops_it(tmp_path: Path, db: Database) -> None:
    # Failing the endpoint would stop the replica that serves: the sibling's crash loop goes
    # on at the capped backoff instead, each crash an event, and the endpoint keeps serving.
    probes = FakeReplicas()
    h = harness(tmp_path, db, probes, desired=1)
    h.control = replace(h.control, crash_loop_threshold=3)

    async def steps(ctl: Controller) -> None:
        backend = h.backend
        assert isinstance(backend, TimedBackend)
        await step(h, ctl, 2)
        (survivor,) = backend.live(1)
        probes.refuse_all = True
        ctl.state.replicas[survivor].next_probe = float("inf")
        with db.unit_of_work() as uow:
            uow.endpoints.set_desired("spin", 2)
        await step(h, ctl)
        await crash_each_start(h, ctl, 5)  # past the threshold of 3
        assert survivor in backend.live(1)
        assert h.routed() == ["r1.test"]

    h.run(steps)
    assert isinstance(h.backend, TimedBackend)
    assert delays(h.backend.started_at[1:]) == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert status(db) is not EndpointStatus.FAILED
    assert len(events(db, EventKind.REPLICA_CRASHED)) == 5
