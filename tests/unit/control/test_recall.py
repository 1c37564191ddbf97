"""The endpoint memory outlives its controller (`control.recall`): a new controller on the
same store (a server restart, another server taking the lead) continues a crash loop's
backoff and streak, and keeps a failure, instead of starting from zero. On fake time; the
new controller's monotonic clock starts elsewhere (another process), its wall clock is the
same."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from podium.backends.base import AdoptCandidate, ObservedReplica, ReplicaLaunch
from podium.control.loop import Controller
from podium.core.clock import Clock, FakeClock
from podium.core.phases import EndpointStatus, EventKind
from podium.core.routing import InProcessRoutingSource
from podium.core.settings import ControlSettings, Settings
from podium.store import Database
from podium.store.memory import EndpointMemoryRepo
from podium.store.records import EndpointMemoryRecord
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import db, events, sqlite_url, status

__all__ = ["db", "sqlite_url"]

STEP_S = 0.25
FIRST_S, CAP_S = 1.0, 16.0  # restart_backoff_s, restart_backoff_max_s


class OtherProcessClock:
    """The same wall clock as `clock`; a monotonic clock that starts elsewhere."""

    def __init__(self, clock: FakeClock, offset: float) -> None:
        self.clock, self.offset = clock, offset

    def monotonic(self) -> float:
        return self.clock.monotonic() - self.offset

    def now(self) -> datetime:
        return self.clock.now()


class TimedBackend(FakeBackend):
    """Remembers the (shared, fake) time of every start."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.started_at: list[float] = []

    async def start(self, launch: ReplicaLaunch) -> ObservedReplica:
        self.started_at.append(self.clock.monotonic())
        return await super().start(launch)


class Scene:
    def __init__(self, tmp_path: Path, db: Database, threshold: int) -> None:
        self.tmp_path, self.db = tmp_path, db
        self.clock = FakeClock()
        self.replicas = FakeReplicas(refuse_all=True)  # nothing becomes ready
        self.settings = Settings(
            home=tmp_path / "home",
            control=ControlSettings(
                restart_backoff_s=FIRST_S,
                restart_backoff_max_s=CAP_S,
                crash_loop_threshold=threshold,
            ),
        )
        with db.unit_of_work() as uow:
            uow.endpoints.set_desired("spin", 1)

    def controller(self, backend: FakeBackend, clock: Clock) -> Controller:
        return Controller(
            self.settings,
            self.db,
            backend,
            InProcessRoutingSource(),
            clock=clock,
            http=self.replicas.client(),
        )

    async def step(self, ctl: Controller, n: int = 1) -> None:
        for _ in range(n):
            self.clock.advance(STEP_S)
            await ctl.run_once()

    async def crash_starts(self, ctl: Controller, backend: TimedBackend, crashes: int) -> None:
        """Each start crashes before it is ready; returns once the last crash is seen."""
        done = 0
        for _ in range(int(120 / STEP_S)):
            for rid in backend.live():
                backend.crash(rid)
                done += 1
            await self.step(ctl)
            if done == crashes:
                return
        raise AssertionError(f"only {done} of {crashes} starts came")

    async def until_started(self, ctl: Controller, backend: FakeBackend, n: int) -> None:
        for _ in range(int(60 / STEP_S)):
            if len(backend.started) >= n:
                return
            await self.step(ctl)
        raise AssertionError(f"only {len(backend.started)} starts, waited for {n}")


def test_a_new_controller_continues_the_backoff_and_the_streak(
    tmp_path: Path, db: Database
) -> None:
    s = Scene(tmp_path, db, threshold=100)
    first, second = TimedBackend(s.clock), TimedBackend(s.clock)

    async def main() -> None:
        old = s.controller(first, s.clock)
        await s.step(old)
        await s.crash_starts(old, first, 3)  # streak 3: the next start waits 4 s
        crashed = s.clock.monotonic() - STEP_S  # (the pass after the crash saw it)
        # The server restarts: a new controller, a new process (nothing of it runs).
        new = s.controller(second, OtherProcessClock(s.clock, offset=5000.0))
        await s.step(new, 4)
        assert second.started == []  # still backing off: not a fresh start at once
        await s.until_started(new, second, 1)
        assert second.started_at[0] - crashed == pytest.approx(4.0 + STEP_S, abs=STEP_S)
        # The streak goes on: the next crash waits 8 s, not 1 s.
        await s.crash_starts(new, second, 1)
        again = s.clock.monotonic() - STEP_S
        await s.until_started(new, second, 2)
        assert second.started_at[1] - again == pytest.approx(8.0 + STEP_S, abs=STEP_S)

    asyncio.run(main())
    assert status(db) is not EndpointStatus.FAILED


def test_a_new_controller_fails_a_crash_loop_it_did_not_see_begin(
    tmp_path: Path, db: Database
) -> None:
    s = Scene(tmp_path, db, threshold=3)
    first, second = TimedBackend(s.clock), TimedBackend(s.clock)

    async def main() -> None:
        old = s.controller(first, s.clock)
        await s.step(old)
        await s.crash_starts(old, first, 2)
        new = s.controller(second, OtherProcessClock(s.clock, offset=-300.0))
        await s.until_started(new, second, 1)
        await s.crash_starts(new, second, 1)  # the third in a row
        await s.step(new, 2)

    asyncio.run(main())
    assert status(db) is EndpointStatus.FAILED
    (failed,) = [e for e in events(db, EventKind.STATUS) if e.data["to"] == "failed"]
    assert "crashed 3 times in a row" in failed.message


def test_a_failure_is_kept_by_the_next_controller_until_the_endpoint_changes(
    tmp_path: Path, db: Database
) -> None:
    s = Scene(tmp_path, db, threshold=2)
    first, second = TimedBackend(s.clock), TimedBackend(s.clock)

    async def main() -> None:
        old = s.controller(first, s.clock)
        await s.step(old)
        await s.crash_starts(old, first, 2)
        await s.step(old, 2)
        assert status(db) is EndpointStatus.FAILED
        with db.unit_of_work(read_only=True) as uow:
            kept = uow.memory.get("spin")
        assert kept is not None and kept.failure is not None
        assert "crash loop" in kept.failure
        new = s.controller(second, s.clock)
        await s.step(new, 20)
        assert second.started == []  # failed: nothing is started
        assert new.state.memory["spin"].failure == kept.failure
        # The user changes the endpoint (a new generation): the failure and streak end.
        with db.unit_of_work() as uow:
            spec = uow.endpoints.get("spin").spec
            uow.endpoints.update_spec(
                "spin", spec, new_revision_model_ref="bundle:1", desired_replicas=1
            )
            uow.endpoints.set_status("spin", EndpointStatus.PENDING, "changed by user")
        await s.until_started(new, second, 1)

    asyncio.run(main())


def test_the_memory_is_written_only_when_it_changes(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Scene(tmp_path, db, threshold=100)
    backend = TimedBackend(s.clock)
    writes: list[EndpointMemoryRecord] = []
    put = EndpointMemoryRepo.put

    def counted(self: EndpointMemoryRepo, record: EndpointMemoryRecord) -> bool:
        writes.append(record)
        return put(self, record)

    monkeypatch.setattr(EndpointMemoryRepo, "put", counted)

    async def main() -> None:
        ctl = s.controller(backend, s.clock)
        await s.step(ctl, 10)
        assert writes == []  # nothing to remember yet
        await s.crash_starts(ctl, backend, 1)
        (crash,) = writes
        assert crash.crash_streak == 1
        assert crash.backoff_until == s.clock.now() + timedelta(seconds=FIRST_S)  # wall clock
        await s.until_started(ctl, backend, 2)  # its restart (counted: one more write)
        assert [(w.crash_streak, w.restarts) for w in writes] == [(1, 0), (1, 1)]
        await s.step(ctl, 20)  # it stays starting: nothing changes, nothing is written
        assert len(writes) == 2

    asyncio.run(main())


class AdoptThenCrash(TimedBackend):
    """Adopts the previous controller's replicas, which have all exited by its first poll."""

    async def adopt(self, candidates: list[AdoptCandidate]) -> list[ObservedReplica]:
        out = []
        for c in candidates:
            obs = ObservedReplica(
                replica_id=c.replica_id,
                endpoint=c.endpoint,
                revision=c.revision,
                host=c.host,
                port=c.port,
                started_at=c.started_at,
                alive=True,
            )
            out.append(obs)
            self._exited.append(replace(obs, alive=False, exit_code=-11))
        return out


def test_an_exit_in_the_first_pass_counts_on_top_of_the_stored_streak(
    tmp_path: Path, db: Database
) -> None:
    """The new controller's first poll reports an exit before the pass reads the endpoints:
    the exit must add to the stored streak (3 → 4), not start a blank memory that then
    overwrites the row (it did: 3 → 1)."""
    s = Scene(tmp_path, db, threshold=100)
    first = TimedBackend(s.clock)
    second = AdoptThenCrash(s.clock)

    async def main() -> None:
        old = s.controller(first, s.clock)
        await s.step(old)
        await s.crash_starts(old, first, 3)
        await s.until_started(old, first, 4)
        with db.unit_of_work(read_only=True) as uow:
            before = uow.memory.get("spin")
        assert before is not None and before.crash_streak == 3, before
        new = s.controller(second, OtherProcessClock(s.clock, offset=5000.0))
        await s.step(new, 1)
        assert new.state.memory["spin"].crash_streak == 4
        with db.unit_of_work(read_only=True) as uow:
            after = uow.memory.get("spin")
        assert after is not None and after.crash_streak == 4, after

    asyncio.run(main())
