"""The in-process routing source: API changes survive a controller table read before them."""

from __future__ import annotations

import threading

from podium.core.phases import EndpointStatus
from podium.core.routing import (
    EndpointRoute,
    InProcessRoutingSource,
    ReplicaRoute,
    RoutingSource,
    RoutingTable,
)

RUNNING = EndpointRoute(
    "old-ep", EndpointStatus.RUNNING, (ReplicaRoute("r1", "127.0.0.1", 9000, 1),)
)


def _pending(name: str) -> EndpointRoute:
    return EndpointRoute(name, EndpointStatus.PENDING)


def test_added_route_is_in_the_table_at_once() -> None:
    holder = InProcessRoutingSource()
    seen: list[RoutingTable] = []
    holder.subscribe(seen.append)
    holder.publish({"old-ep": RUNNING})
    holder.add(_pending("new-ep"))
    table = holder.table
    assert set(table.endpoints) == {"old-ep", "new-ep"}
    assert table.endpoints["new-ep"].status is EndpointStatus.PENDING
    assert [t.version for t in seen] == [1, 2]  # listeners (the activator) hear of it


def test_a_table_read_before_the_create_does_not_drop_it() -> None:
    holder = InProcessRoutingSource()
    holder.publish({"old-ep": RUNNING})
    holder.add(_pending("new-ep"))
    holder.publish({"old-ep": RUNNING})  # the controller read the store before the create
    assert "new-ep" in holder.table.endpoints
    ready = EndpointRoute(
        "new-ep", EndpointStatus.RUNNING, (ReplicaRoute("r2", "127.0.0.1", 9001, 1),)
    )
    holder.publish({"old-ep": RUNNING, "new-ep": ready})  # the controller knows it now
    assert holder.table.endpoints["new-ep"] is ready
    holder.publish({"old-ep": RUNNING})  # later: deleted and gone from the store
    assert "new-ep" not in holder.table.endpoints


def test_add_keeps_a_route_the_controller_already_published() -> None:
    holder = InProcessRoutingSource()
    holder.publish({"old-ep": RUNNING})
    version = holder.table.version
    holder.add(_pending("old-ep"))
    assert holder.table.endpoints["old-ep"] is RUNNING
    assert holder.table.version == version


def test_removed_route_leaves_at_once_and_stays_out() -> None:
    holder = InProcessRoutingSource()
    holder.publish({"old-ep": RUNNING})
    holder.remove("old-ep")
    assert "old-ep" not in holder.table.endpoints
    holder.publish({"old-ep": RUNNING})  # a table built before the delete
    assert "old-ep" not in holder.table.endpoints
    holder.publish({})  # the controller saw the delete
    holder.add(_pending("old-ep"))  # the name is free again: a new endpoint
    assert holder.table.endpoints["old-ep"].status is EndpointStatus.PENDING


def test_create_then_delete_before_the_controller_saw_either() -> None:
    holder = InProcessRoutingSource()
    holder.add(_pending("brief"))
    holder.remove("brief")
    holder.publish({"brief": _pending("brief")})  # read between the create and the delete
    assert "brief" not in holder.table.endpoints


def test_wait_newer_returns_once_a_table_is_published() -> None:
    source = InProcessRoutingSource()
    assert source.wait_newer(0, 0.01).version == 0  # nothing newer: after the timeout
    ready = threading.Event()

    def publisher() -> None:
        ready.wait()
        source.publish({"old-ep": RUNNING})

    thread = threading.Thread(target=publisher)
    thread.start()
    ready.set()
    table = source.wait_newer(0, 30)
    thread.join()
    assert table.version == 1
    assert table.endpoints["old-ep"] is RUNNING


def test_the_in_process_source_is_the_routing_source() -> None:
    """What the gateway, the API and the controller are typed against (mypy checks this
    assignment; at run time the source answers every method of the Protocol)."""
    source: RoutingSource = InProcessRoutingSource()
    missing = [
        name
        for name in ("publish", "add", "remove", "subscribe", "wait_newer")
        if not callable(getattr(source, name, None))
    ]
    assert missing == []
    assert isinstance(source.table, RoutingTable)
