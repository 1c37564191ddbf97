"""The order of a rolling update on a real server, from the event log and the replica
states the API shows: each old replica stops only after a new one is ready, and no state
seen during the rollout has fewer ready replicas than desired (so none with zero)."""

from __future__ import annotations

import threading
from pathlib import Path

from podium.core.phases import EventKind, ReplicaState
from podium.core.schemas import EventPublic
from tests.support.lifecycle_models import write_lifecycle_bundle
from tests.support.server import ServerProcess, wait_running, wait_until

DESIRED = 2


def check_order(events: list[EventPublic]) -> None:
    """At each old replica's stop, more new replicas have become ready than old ones
    stopped: capacity is handed over, never dropped."""
    new_ready = old_stopped = 0
    for e in sorted(events, key=lambda e: e.id):
        if e.kind is EventKind.REPLICA_READY and e.data["revision"] == 2:
            new_ready += 1
        elif e.kind is EventKind.REPLICA_STOPPED and e.data["revision"] == 1:
            old_stopped += 1
            assert old_stopped <= new_ready, f"an old replica stopped before its successor: {e}"
    assert (new_ready, old_stopped) == (DESIRED, DESIRED)


def test_new_replicas_are_ready_before_old_ones_stop(server: ServerProcess, tmp_path: Path) -> None:
    with server.client() as c:
        c.push_model(write_lifecycle_bundle(tmp_path / "v1", version=1), "orderly")
        c.push_model(write_lifecycle_bundle(tmp_path / "v2", version=2), "orderly")
        c.deploy(
            {
                "name": "orderly",
                "model": "orderly:1",
                "framework": "python",
                "scaling": {"min_replicas": DESIRED, "max_replicas": DESIRED},
            }
        )
        wait_running(c, "orderly")
        wait_until(
            lambda: (
                [r.state for r in c.endpoint("orderly").replicas] == [ReplicaState.READY] * DESIRED
            ),
            what="2 ready replicas",
        )

    # Watch the replicas' states through the API for the whole rollout.
    seen: list[dict[str, tuple[int, ReplicaState]]] = []
    done = threading.Event()

    def watch() -> None:
        with server.client() as w:
            while not done.is_set():
                seen.append(
                    {r.replica_id: (r.revision, r.state) for r in w.endpoint("orderly").replicas}
                )
                done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with server.client() as c:
            c.update("orderly", {"model": "orderly:2"})
            c.wait_rolled_out("orderly", 2, timeout=120)
            wait_until(lambda: len(c.endpoint("orderly").replicas) == DESIRED, what="old gone")
    finally:
        done.set()
        watcher.join(30)

    with server.client() as c:
        events = c.events("orderly")
    check_order(events)
    ready_counts = [sum(s is ReplicaState.READY for _, s in snap.values()) for snap in seen]
    assert min(ready_counts) >= DESIRED, ready_counts
    # The watch covered the hand-over itself (both revisions had replicas), not just its ends.
    assert any({rev for rev, _ in snap.values()} == {1, 2} for snap in seen)
