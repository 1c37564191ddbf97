"""A slow probe never holds up a controller pass (review 14, finding 1): each replica's
probe is its own task; a pass sends the due ones and applies the answers that have come.
On fake time (tests/unit/control/fakes.py: endpoint "spin", replicas r1 and r2), with
r1's readiness probe held until the test releases it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from podium.control.loop import Controller
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
