"""`Controller.wake` and the controller's own timers, on its real thread with a one-hour
tick: a pass that follows within the test's generous wait can only come from a wake or a
timer the controller set itself. (The wiring from the gateway and the API to `wake` is in
tests/integration/test_controller_wake.py.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from podium.control.loop import Controller
from podium.control.tracked import TrackedReplica
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.routing import InProcessRoutingSource
from podium.core.settings import ControlSettings, Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.records import EndpointRecord
from tests.support.db import sqlite_url
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.support.server import wait_until

__all__ = ["sqlite_url"]

HOUR = 3600.0
WAIT_S = 30.0  # generous: "at once" compared with the hour the controller would sleep


@pytest.fixture
def db(sqlite_url: str, tmp_path: Path) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    with database.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="test",
            path=str(tmp_path),
        )
    yield database
    database.dispose()


def add_endpoint(db: Database, desired: int) -> None:
    """One endpoint whose ready replicas are probed once an hour (no probe brings a pass)."""
    spec = EndpointSpec.model_validate(
        {
            "name": "nap",
            "model": "bundle:1",
            "framework": "python",
            "readiness": {"path": "/health/ready", "period_s": HOUR},
            "liveness": {"path": "/health/live", "period_s": HOUR},
            "scaling": {"min_replicas": desired, "max_replicas": desired},
        }
    )
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec, model_ref="bundle:1", status=EndpointStatus.PENDING, desired_replicas=desired
        )


class Passes:
    """Counts the controller's passes (its `on_tick` hook); `wait_for(n)` blocks until n."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()
        self.then: Callable[[int], None] | None = None  # runs in the controller's thread

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            n = self.count
            self._cond.notify_all()
        if self.then is not None:
            self.then(n)

    def wait_for(self, n: int) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.count >= n, WAIT_S):
                raise AssertionError(f"only {self.count} controller pass(es), waited for {n}")


@pytest.fixture
def controller(tmp_path: Path, db: Database) -> Iterator[Controller]:
    settings = Settings(
        home=tmp_path / "home",
        control=ControlSettings(tick_s=HOUR, restart_backoff_s=0.05),
    )
    http = FakeReplicas().client()
    ctl = Controller(
        settings,
        db,
        FakeBackend(),
        InProcessRoutingSource(),
        http=http,
    )
    yield ctl
    ctl.stop()


def test_wake_runs_a_pass_at_once(controller: Controller) -> None:
    passes = Passes()
    controller.on_tick = passes
    controller.start()  # returns after the first pass
    assert passes.count == 1
    controller.wake("nap")
    passes.wait_for(2)


class _WakesDuringPass:
    """The autoscaling step of the first pass: something wakes the controller while the
    pass awaits (as a held request does while a pass scrapes metrics or starts a replica)."""

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.calls = 0

    def read_queue(self, uow: object) -> None:
        """The task queue's depth (read in the pass's store access): none here."""

    async def run(
        self,
        endpoints: Sequence[EndpointRecord],
        replicas: Iterable[TrackedReplica],
        http: httpx.AsyncClient | None,
        *,
        skip: Callable[[str], bool] = lambda name: False,
    ) -> list[EndpointRecord]:
        self.calls += 1
        if self.calls == 1:
            self.ctl.wake("nap")
            await asyncio.sleep(0)  # the loop runs the wake's callback now, mid-pass
        return list(endpoints)


def test_a_wake_that_arrives_during_a_pass_is_not_lost(controller: Controller) -> None:
    """The pass may have read the store before the change that woke it: another pass
    must follow, not the next tick."""
    passes = Passes()
    controller.on_tick = passes
    controller.scaling = _WakesDuringPass(controller)  # type: ignore[assignment]
    controller.start()
    passes.wait_for(2)


def test_a_crashed_replica_is_restarted_when_its_backoff_ends(
    controller: Controller, db: Database
) -> None:
    """The replica crashes while the controller sleeps (its next probe an hour away): the
    wake makes the controller see the exit at once; the restart waits for the backoff, and
    the controller sleeps until the backoff ends, not for the tick."""
    add_endpoint(db, desired=1)
    backend = controller.backend
    assert isinstance(backend, FakeBackend)
    passes = Passes()
    crashed: list[str] = []

    def crash_once_ready(_n: int) -> None:  # in the controller's thread, between passes
        soon = controller.clock.monotonic() + 60
        ready = [
            r
            for r in controller.state.replicas.values()
            if r.state is ReplicaState.READY and r.next_probe > soon
        ]
        if ready and not crashed:
            crashed.append(ready[0].replica_id)
            backend.crash(ready[0].replica_id)
            controller.wake("nap")

    passes.then = crash_once_ready
    controller.on_tick = passes
    controller.start()
    wait_until(lambda: bool(crashed), WAIT_S, "the replica to become ready")
    wait_until(lambda: len(backend.started) >= 2, WAIT_S, "the restart after the backoff")
