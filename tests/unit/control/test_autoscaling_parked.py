"""Scale to zero now, through the glue: the API's service writes the count on a real SQLite
store, the autoscaler (and a new one, as after a server restart) leaves it at zero although
`min_replicas` is 2, and a held request brings it up to the minimum in one pass."""

from __future__ import annotations

from pathlib import Path

from podium.api.services.endpoints import EndpointService
from podium.control.autoscaling import Autoscaling
from podium.core.clock import FakeClock
from podium.core.phases import ReplicaState
from podium.core.routing import EndpointLoad
from podium.core.settings import Settings
from podium.store import Database
from tests.unit.control.test_autoscaling import (
    FakeGateway,
    clock,
    db,
    deploy,
    endpoints,
    gateway,
    one_pass,
    replica,
    scaled_events,
    settings,
    sqlite_url,
)

__all__ = ["clock", "db", "gateway", "settings", "sqlite_url"]


def test_a_parked_endpoint_stays_at_zero_across_scalers_until_a_request_is_held(
    tmp_path: Path, settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    deploy(db, desired=2, min_replicas=2, max_replicas=4)
    gateway.loads["echo"] = EndpointLoad(in_flight=3, requests=50)  # serving
    scaler = Autoscaling(settings, db, clock, gateway)
    one_pass(scaler, db, [replica("r1"), replica("r2")])

    EndpointService(settings, db, lambda name: None).scale_to_zero("echo")
    gateway.loads["echo"] = EndpointLoad(in_flight=1, requests=60)  # still finishing
    for _ in range(30):
        clock.advance(1)
        one_pass(scaler, db, [replica("r1", ReplicaState.DRAINING)])
        gateway.loads["echo"] = EndpointLoad(requests=60)
    fresh = Autoscaling(settings, db, clock, gateway)  # a restarted controller
    for _ in range(30):
        clock.advance(1)
        one_pass(fresh, db)
    (ep,) = endpoints(db)
    assert ep.desired_replicas == 0
    assert [e.message for e in scaled_events(db)] == [
        "scaled 2→0: scaled to zero by user (the next request wakes it)"
    ]

    gateway.loads["echo"] = EndpointLoad(held=1, requests=61)
    clock.advance(1)
    (ep,) = one_pass(fresh, db)
    assert ep.desired_replicas == 2  # the minimum again, in the same pass
    assert scaled_events(db)[-1].data["signal"] == "held"


def test_with_min_zero_the_users_zero_holds_against_draining_requests_and_a_restart(
    tmp_path: Path, settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    """min_replicas 0: the store's 0 is no proof of a user's zero (idle also writes it), so
    the scaler notices the count dropped to 0 without its own decision."""
    deploy(db, desired=2, min_replicas=0, max_replicas=4, scale_to_zero_after="1h")
    scaler = Autoscaling(settings, db, clock, gateway)
    for n in range(20):  # busy: 6 in flight, requests arriving
        gateway.loads["echo"] = EndpointLoad(in_flight=6, requests=10 * n)
        one_pass(scaler, db, [replica("r1"), replica("r2")])
        clock.advance(1)

    EndpointService(settings, db, lambda name: None).scale_to_zero("echo")
    for n in range(30):  # the draining replicas finish what they hold
        gateway.loads["echo"] = EndpointLoad(in_flight=max(0, 6 - n), requests=200 + n)
        one_pass(scaler, db, [replica("r1", ReplicaState.DRAINING)])
        clock.advance(1)
    fresh = Autoscaling(settings, db, clock, gateway)  # a restarted controller
    for _ in range(10):
        one_pass(fresh, db)
        clock.advance(1)
    (ep,) = endpoints(db)
    assert ep.desired_replicas == 0
    assert [e.data["signal"] for e in scaled_events(db)] == ["user_zero"]

    gateway.loads["echo"] = EndpointLoad(held=1, requests=231)
    (ep,) = one_pass(fresh, db)
    assert ep.desired_replicas == 1
    assert scaled_events(db)[-1].data["signal"] == "held"
