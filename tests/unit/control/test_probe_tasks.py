"""A slow probe never holds up a controller pass (review 14, finding 1): each replica's
probe is its own task; a pass sends the due ones and applies the answers that have come.
On fake time (tests/unit/control/fakes.py: endpoint "spin", replicas r1 and r2), with
r1's readiness probe held until the test releases it."""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path

import httpx
import pytest

from podium.control.loop import Controller
from podium.control.probing import Probing
from podium.core.phases import ExitReason, ReplicaState
from podium.core.probe_spec import ProbeSpec
from podium.store import Database
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, sqlite_url

__all__ = ["db", "sqlite_url"]

HELD = "r1.test"


class HeldReadiness:
    """`FakeReplicas` whose readiness probes of r1 wait until `release` (an async handler:
    httpx's `MockTransport` awaits it)."""

    def __init__(self) -> None:
        self.replicas = FakeReplicas()
        self.gate = asyncio.Event()
        self.sent = 0  # readiness probes of r1
        self.cancelled = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == HELD and request.url.path == "/health/ready":
            self.sent += 1
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return self.replicas(request)

    def release(self) -> None:
        self.gate.set()


def test_a_pass_returns_while_a_probe_is_out_and_does_not_send_it_again(
    tmp_path: Path, db: Database
) -> None:
    held = HeldReadiness()
    h = Harness(tmp_path, db, held)  # type: ignore[arg-type]  # an async handler

    async def steps(ctl: Controller) -> None:
        passes = asyncio.create_task(h.passes(ctl, 4))
        # A guard, not a timing: before the fix the first pass never returned.
        done, _ = await asyncio.wait({passes}, timeout=60)
        assert passes in done, "a controller pass waited for a probe that has not answered"
        assert held.sent == 1  # asked once; not again while its answer is out
        (r1,) = [r for r in ctl.state.replicas.values() if h.host(r.replica_id) == HELD]
        assert ctl.probing.in_flight() == {r1.replica_id}
        assert h.routed() == ["r2.test"]  # the other replica's probes went on meanwhile
        held.release()
        await ctl.probing.answered()
        await h.passes(ctl, 1)
        assert ctl.probing.in_flight() == set()
        assert h.routed() == ["r1.test", "r2.test"]

    h.run(steps)
    assert h.backend.killed == []


def test_stopping_cancels_the_probes_in_flight(tmp_path: Path, db: Database) -> None:
    held = HeldReadiness()
    h = Harness(tmp_path, db, held)  # type: ignore[arg-type]

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)
        assert held.sent == 1 and len(ctl.probing.in_flight()) == 1
        await ctl.probing.close()
        assert ctl.probing.in_flight() == set()

    h.run(steps)
    assert held.cancelled == 1


def test_a_slow_readiness_probe_does_not_hold_back_liveness(tmp_path: Path, db: Database) -> None:
    # Review 2, finding 1: liveness and readiness are separate flights, so a hung replica
    # whose readiness probe is held is still killed for its liveness answer.
    held = HeldReadiness()
    h = Harness(tmp_path, db, held)  # type: ignore[arg-type]

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert h.routed() == ["r1.test", "r2.test"]
        held.gate.clear()
        held.replicas.hung.add(HELD)  # liveness says hung: act at once
        for _ in range(3):
            await h.passes(ctl, 1)
        assert held.sent >= 1 and held.cancelled == 1  # readiness still out when killed
        ((killed, reason),) = h.backend.killed
        assert h.host(killed) == HELD and reason is ExitReason.HUNG

    held.release()  # r1's first readiness probe answers; its later ones are held
    h.run(steps)


def test_a_changed_probe_spec_cancels_the_flight_and_probes_with_the_new_one(
    tmp_path: Path, db: Database
) -> None:
    held = HeldReadiness()
    h = Harness(tmp_path, db, held)  # type: ignore[arg-type]

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)
        assert held.sent == 1 and held.cancelled == 0
        with db.unit_of_work() as uow:
            spec = uow.endpoints.get("spin").spec
            new = spec.model_copy(update={"readiness": ProbeSpec(timeout_s=2.0)})
            uow.endpoints.update_spec("spin", new, new_revision_model_ref=None, desired_replicas=2)
        await h.passes(ctl, 1)
        assert held.cancelled == 1  # the old probe is dropped ...
        assert held.sent == 2  # ... and the new one sent in the same pass
        held.release()
        await ctl.probing.answered()
        await h.passes(ctl, 1)
        assert h.routed() == ["r1.test", "r2.test"]

    h.run(steps)


def test_a_pass_whose_probes_answered_within_it_does_not_wake_the_loop(
    tmp_path: Path, db: Database
) -> None:
    # Review 2, finding 6: only a probe answered after its pass wakes another pass.
    held = HeldReadiness()
    h = Harness(tmp_path, db, held)  # type: ignore[arg-type]
    wakes: list[None] = []

    async def steps(ctl: Controller) -> None:
        ctl.probing = Probing(
            ctl.settings.control,
            db,
            ctl.clock,
            ctl.state,
            ctl.journal,
            ctl.act,
            wake=lambda: wakes.append(None),
        )
        await h.passes(ctl, 3)  # r2's probes answer within each pass; r1's readiness is out
        await asyncio.sleep(0)
        assert wakes == [] and held.sent == 1
        held.release()
        await ctl.probing.answered()
        await asyncio.sleep(0)
        assert len(wakes) == 1  # r1's answer came after its pass: one wake to apply it
        await h.passes(ctl, 1)
        assert h.routed() == ["r1.test", "r2.test"]

    h.run(steps)


class CancelledOnce(HeldReadiness):
    """r1's first readiness probe ends cancelled (as library code in a probe could)."""

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == HELD and request.url.path == "/health/ready":
            self.sent += 1
            if self.sent == 1:
                raise asyncio.CancelledError
        return self.replicas(request)


def test_a_probe_cancelled_elsewhere_is_a_failed_probe(
    tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # Review 2, finding 7: it used to escape the pass (and end the controller's thread).
    probes = CancelledOnce()
    h = Harness(tmp_path, db, probes)  # type: ignore[arg-type]

    async def steps(ctl: Controller) -> None:
        while probes.sent == 0:
            await h.passes(ctl, 1)
        (r1,) = [r for r in ctl.state.replicas.values() if h.host(r.replica_id) == HELD]
        assert r1.next_probe != math.inf and r1.state is ReplicaState.STARTING
        assert ctl.probing.in_flight() <= {r.replica_id for r in ctl.state.replicas.values()}
        await h.passes(ctl, 3)
        assert probes.sent >= 2  # probed again, and ready
        assert h.routed() == ["r1.test", "r2.test"]

    with caplog.at_level(logging.WARNING, logger="podium.control"):
        h.run(steps)
    assert any("was cancelled" in m for m in caplog.messages)
