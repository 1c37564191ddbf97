"""Readiness on fake time: a ready replica that fails its readiness probe leaves routing
(without being restarted) and comes back when it passes again, however long it has run; a
replica that never becomes ready is killed after the ready timeout, not before."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from podium.control.loop import Controller
from podium.core.phases import EventKind, ExitReason
from podium.store import Database
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, events, sqlite_url
from tests.unit.control.lifecycle import replica_events

__all__ = ["db", "sqlite_url"]

READY_TIMEOUT_S = 20.0
FAILURE_THRESHOLD = 3  # the endpoint's readiness probe (the spec's default), period 1 s


def test_a_ready_replica_failing_readiness_leaves_routing_and_comes_back(
    tmp_path: Path, db: Database
) -> None:
    probes = FakeReplicas()
    h = Harness(tmp_path, db, probes)
    h.control = replace(h.control, ready_timeout_s=READY_TIMEOUT_S)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert h.routed() == ["r1.test", "r2.test"]
        # Serving for longer than the ready timeout: its wait for readiness starts again
        # when it leaves routing, it is not measured from its start.
        await h.passes(ctl, int(READY_TIMEOUT_S) * 2)
        probes.not_ready.add("r1.test")
        await h.passes(ctl, FAILURE_THRESHOLD - 1)
        assert h.routed() == ["r1.test", "r2.test"]  # below the threshold: still routed
        await h.passes(ctl, 1)
        assert h.routed() == ["r2.test"]
        # Not ready for a while (within the ready timeout): out of routing, not restarted.
        await h.passes(ctl, int(READY_TIMEOUT_S) // 2)
        assert h.routed() == ["r2.test"]
        assert h.backend.killed == []
        probes.not_ready.discard("r1.test")
        await h.passes(ctl, 1)
        assert h.routed() == ["r1.test", "r2.test"]

    h.run(steps)
    (unhealthy,) = events(db, EventKind.REPLICA_UNHEALTHY)
    assert "taken out of routing: readiness probe failed 3 times: HTTP 503" in unhealthy.message
    r1 = unhealthy.data["replica_id"]
    assert replica_events(db, EventKind.REPLICA_READY).count(r1) == 2  # ready, then back
    assert replica_events(db, EventKind.REPLICA_RESTARTED) == []


def test_a_replica_never_ready_is_killed_after_its_ready_timeout(
    tmp_path: Path, db: Database
) -> None:
    probes = FakeReplicas()
    h = Harness(tmp_path, db, probes)
    h.control = replace(h.control, ready_timeout_s=READY_TIMEOUT_S)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 1)  # both replicas started
        probes.not_ready.add("r1.test")  # r1 answers, but never says ready
        started = h.clock.monotonic()
        while h.clock.monotonic() - started < READY_TIMEOUT_S - 1:
            await h.passes(ctl, 1)
        assert h.backend.killed == []
        assert h.routed() == ["r2.test"]
        await h.passes(ctl, 3)
        assert h.backend.killed == [(h.backend.started[0].replica_id, ExitReason.UNHEALTHY)]

    h.run(steps)
    (unhealthy,) = events(db, EventKind.REPLICA_UNHEALTHY)
    assert f"not ready after {READY_TIMEOUT_S:g}s (HTTP 503)" in unhealthy.message
