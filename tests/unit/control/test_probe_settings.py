"""`success_threshold` and `enabled: false` in the controller's probing, on fake time
(tests/unit/control/fakes.py: endpoint "spin", two replicas, one pass a second)."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

from podium.backends.base import ObservedReplica, ReplicaLaunch
from podium.control.loop import Controller
from podium.core.phases import EventKind
from podium.core.spec import EndpointUpdate
from podium.store import Database
from tests.support.fake_backend import FakeBackend
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, events, sqlite_url

__all__ = ["db", "sqlite_url"]


def _change(db: Database, **change: Any) -> None:
    """Change spin's probes in place (probe timings are the endpoint's, not a revision's)."""
    with db.unit_of_work() as uow:
        rec = uow.endpoints.get("spin")
        new = EndpointUpdate.model_validate(change).apply(rec.spec)
        uow.endpoints.update_spec("spin", new, new_revision_model_ref=None, desired_replicas=2)


def test_success_threshold_passes_in_a_row_to_be_routed_again(tmp_path: Path, db: Database) -> None:
    _change(db, readiness={"success_threshold": 3, "failure_threshold": 2})
    probes = FakeReplicas()
    h = Harness(tmp_path, db, probes)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 1)  # started, first readiness pass
        await h.passes(ctl, 1)
        assert h.routed() == []  # 2 passes of 3
        await h.passes(ctl, 2)
        assert h.routed() == ["r1.test", "r2.test"]
        probes.not_ready.add("r1.test")
        await h.passes(ctl, 2)
        assert h.routed() == ["r2.test"]
        probes.not_ready.discard("r1.test")
        await h.passes(ctl, 2)
        assert h.routed() == ["r2.test"]  # 2 passes in a row: not yet
        probes.not_ready.add("r1.test")  # a failure starts the count over
        await h.passes(ctl, 1)
        probes.not_ready.discard("r1.test")
        await h.passes(ctl, 2)
        assert h.routed() == ["r2.test"]
        await h.passes(ctl, 1)
        assert h.routed() == ["r1.test", "r2.test"]

    h.run(steps)
    assert h.backend.killed == []


def test_liveness_off_means_no_liveness_probe_and_no_restart(tmp_path: Path, db: Database) -> None:
    _change(db, liveness={"enabled": False})
    probes = FakeReplicas()
    h = Harness(tmp_path, db, probes)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert h.routed() == ["r1.test", "r2.test"]
        probes.hung.add("r1.test")  # would be killed at once if asked
        await h.passes(ctl, 30)
        assert h.routed() == ["r1.test", "r2.test"]

    h.run(steps)
    assert probes.asked_for("/health/live") == []
    assert h.backend.killed == []
    assert events(db, EventKind.REPLICA_HUNG) == []


class LocalBackend(FakeBackend):
    """Replicas on 127.0.0.1 at the ports of `ports`, in start order."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__()
        self.ports = ports

    def start_now(self, launch: ReplicaLaunch) -> ObservedReplica:
        obs = super().start_now(launch)
        port = self.ports[len(self.started) - 1]
        self._live[launch.replica_id] = obs = replace(obs, host="127.0.0.1", port=port)
        return obs


def test_readiness_off_ready_once_the_port_accepts(tmp_path: Path, db: Database) -> None:
    """No readiness route is asked: the replica whose port accepts a connection is routed
    (the event says why), the one whose port refuses is not."""
    _change(db, readiness={"enabled": False})
    probes = FakeReplicas()
    h = Harness(tmp_path, db, probes)

    with socket.socket() as listener, socket.socket() as closed:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel accepts: no accept loop needed
        closed.bind(("127.0.0.1", 0))  # bound, not listening: refuses
        ports = [listener.getsockname()[1], closed.getsockname()[1]]
        h.backend = LocalBackend(ports)

        async def steps(ctl: Controller) -> None:
            await h.passes(ctl, 3)
            routed = h.holder.table.endpoints["spin"].replicas
            assert [r.port for r in routed] == ports[:1]

        h.run(steps)
    assert probes.asked_for("/health/ready") == []
    (ready,) = events(db, EventKind.REPLICA_READY)
    assert "readiness probe disabled: ready once its port accepted a connection" in ready.message


def test_failures_count_in_a_row_as_kubernetes_counts_them(tmp_path: Path, db: Database) -> None:
    """Any pass ends a run of failures, whatever `success_threshold` is (review 14, 15a):
    fail, pass, fail, pass, fail keeps a replica routed under `failure_threshold` 3."""
    _change(db, readiness={"success_threshold": 2, "failure_threshold": 3})
    probes = FakeReplicas()
    h = Harness(tmp_path, db, probes)

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)
        assert h.routed() == ["r1.test", "r2.test"]
        for failing in (True, False, True, False, True):
            (probes.not_ready.add if failing else probes.not_ready.discard)("r1.test")
            await h.passes(ctl, 1)
        assert h.routed() == ["r1.test", "r2.test"]
        await h.passes(ctl, 2)  # three failures in a row
        assert h.routed() == ["r2.test"]

    h.run(steps)
