"""Endpoints at zero with nothing to do cost the controller no per-endpoint work
(issue 16's 1,000 endpoints): the autoscaler skips their sample and decision, the
publisher keeps their routes, the zygote is asked once per framework. What they would
have decided is unchanged: a held request or a queued task still wakes them at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from podium.control.autoscaling import Autoscaling
from podium.control.publishing import Publisher
from podium.control.starts import Starts
from podium.control.state import ControllerState
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.routing import EndpointLoad, InProcessRoutingSource
from podium.core.settings import Settings
from podium.store import Database
from tests.unit.control.test_autoscaling import (
    FakeGateway,
    db,
    deploy,
    endpoints,
    one_pass,
    replica,
    scaled_events,
    settings,
    sqlite_url,
)

__all__ = ["db", "settings", "sqlite_url"]

ZERO = EndpointStatus.SCALED_TO_ZERO


def samples(scaler: Autoscaling, name: str = "echo") -> int:
    track = scaler._tracks[name]
    return len(track.history.samples)


def test_a_quiet_endpoint_at_zero_takes_no_sample_until_a_request_is_held(
    settings: Settings, db: Database
) -> None:
    clock, gateway = FakeClock(), FakeGateway()
    deploy(db, desired=0, status=ZERO, min_replicas=0, max_replicas=4)
    scaler = Autoscaling(settings, db, clock, gateway)
    one_pass(scaler, db)  # the first pass decides (the policy learns the count of 0)
    assert samples(scaler) == 1
    for _ in range(5):
        clock.advance(1.0)
        (ep,) = one_pass(scaler, db)
        assert ep.desired_replicas == 0
    assert samples(scaler) == 1  # skipped: nothing could move it
    clock.advance(1.0)
    gateway.loads["echo"] = EndpointLoad(held=5, requests=0)
    (ep,) = one_pass(scaler, db)
    assert ep.desired_replicas == 2  # ceil(5 held / 4 per replica), in the same pass
    (event,) = scaled_events(db)
    assert event.data["signal"] == "held"


def test_a_request_counted_or_a_replica_left_at_zero_is_still_sampled(
    settings: Settings, db: Database
) -> None:
    clock, gateway = FakeClock(), FakeGateway()
    deploy(db, desired=0, status=ZERO, min_replicas=0, max_replicas=4)
    scaler = Autoscaling(settings, db, clock, gateway)
    one_pass(scaler, db)
    clock.advance(1.0)
    gateway.loads["echo"] = EndpointLoad(requests=3)  # answered (e.g. by a draining replica)
    one_pass(scaler, db)
    assert samples(scaler) == 2
    clock.advance(1.0)
    one_pass(scaler, db, [replica("echo-r1", ReplicaState.DRAINING)])
    assert samples(scaler) == 3
    clock.advance(1.0)
    one_pass(scaler, db)  # quiet again: skipped
    assert samples(scaler) == 3
    assert scaled_events(db) == []


def test_an_endpoint_above_zero_is_always_sampled(settings: Settings, db: Database) -> None:
    clock, gateway = FakeClock(), FakeGateway()
    deploy(db, desired=1, min_replicas=1, max_replicas=4)
    scaler = Autoscaling(settings, db, clock, gateway)
    for i in range(3):
        clock.advance(1.0)
        one_pass(scaler, db, [replica("echo-r1")])
        assert samples(scaler) == i + 1  # one per pass (1 s apart)


def test_the_publisher_keeps_a_route_until_its_inputs_change(
    settings: Settings, db: Database
) -> None:
    deploy(db, desired=0, status=ZERO, min_replicas=0, max_replicas=4)
    state = ControllerState(starts=Starts(lambda endpoint=None: None))
    source = InProcessRoutingSource()
    publisher = Publisher(source, state)
    (ep,) = endpoints(db)
    first = publisher.build([ep])["echo"]
    (again,) = endpoints(db)  # a new record from a new unit of work, same stored spec
    assert publisher.build([again])["echo"] is first
    state.replicas["echo-r1"] = replica("echo-r1")
    routed = publisher.build([again])["echo"]
    assert routed is not first and [r.replica_id for r in routed.replicas] == ["echo-r1"]
    changed = replace(again, spec=again.spec.model_copy(update={"timeout_s": 7.0}))
    assert publisher.build([changed])["echo"].timeout_s == 7.0


def test_a_pass_over_many_endpoints_at_zero_writes_nothing(
    settings: Settings, db: Database
) -> None:
    clock, gateway = FakeClock(), FakeGateway()
    for i in range(20):
        deploy(db, f"e{i:02d}", desired=0, status=ZERO, min_replicas=0, max_replicas=2)
    scaler = Autoscaling(settings, db, clock, gateway)
    asyncio.run(scaler.run(endpoints(db), [], None))
    clock.advance(1.0)
    out = asyncio.run(scaler.run(endpoints(db), [], None))
    assert [e.desired_replicas for e in out] == [0] * 20
    assert all(len(t.history.samples) == 1 for t in scaler._tracks.values())
