"""The request pipeline: both routes go through it, and a stage attaches to both at once.

Over real sockets (a stand-in replica, the gateway in a server thread). The `Gate` stage
stands for what later issues attach (authentication, rate limits, the request record): it
refuses requests carrying `x-test-deny` and records every invocation it sees end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute
from podium.gateway.activator import Refusal
from podium.gateway.pipeline import Invocation
from tests.unit.gateway.conftest import Replica, RunningGateway, Servers
from tests.unit.gateway.servers import wait_until

DENY = b"x-test-deny"


class Gate:
    """A stage: refuses with 401 when the request carries `x-test-deny`; records endings."""

    def __init__(self) -> None:
        self.checked: list[str] = []  # request ids, in the order checked
        self.finished: list[tuple[str, str, int]] = []  # (endpoint, target, status)
        self.seconds: list[float] = []  # what each finish was told the call took

    async def check(self, call: Invocation) -> Refusal | None:
        self.checked.append(call.head.request_id)
        call.state["gate"] = "seen"
        if any(name == DENY for name, _ in call.scope["headers"]):
            return Refusal(401, "denied by the test gate", "Unauthorized")
        return None

    def finish(self, call: Invocation, status: int, seconds: float) -> None:
        assert call.state["gate"] == "seen"  # what check learnt reaches finish
        # `started` is the call's perf_counter reading; `seconds` how long it took since.
        assert 0 <= call.started <= time.perf_counter() - seconds
        self.seconds.append(seconds)
        self.finished.append((call.route.name, call.target, status))


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Servers, Replica]]:
    servers = Servers("http1")
    (replica,) = servers.replicas(1)
    yield servers, replica
    servers.close()


@pytest.fixture
def gated(setup: tuple[Servers, Replica]) -> tuple[RunningGateway, Gate, Replica]:
    servers, replica = setup
    gate = Gate()
    running = servers.gateway(stages=[gate])
    running.publish(
        EndpointRoute("e", EndpointStatus.RUNNING, (replica.route,)),
        EndpointRoute("sleepy", EndpointStatus.PAUSED, ()),
    )
    return running, gate, replica


def chat(model: str) -> bytes:
    return json.dumps({"model": model, "messages": []}).encode()


def test_a_stage_sees_every_invocation_of_both_routes(
    gated: tuple[RunningGateway, Gate, Replica],
) -> None:
    gw, gate, _ = gated
    began = time.perf_counter()
    with gw.client() as client:
        assert client.post("/endpoints/e/echo?x=1", content=b"hi").status_code == 200
        r = client.post("/v1/chat/completions", content=chat("e"))
        assert r.status_code == 200
        assert r.json()["path"] == "/v1/chat/completions"
    took = time.perf_counter() - began
    # Each call's duration is part of the test's (a bound, not a speed requirement).
    assert all(0 <= s <= took for s in gate.seconds), (gate.seconds, took)
    assert wait_until(
        lambda: gate.finished == [("e", "/echo?x=1", 200), ("e", "/v1/chat/completions", 200)]
    ), gate.finished
    assert len(gate.checked) == 2
    gw.settle()
    load = gw.gateway.load_snapshot()["e"]
    assert (load.requests, load.succeeded) == (2, 2)  # metered once each, by the pipeline


def test_a_stage_refusal_is_answered_in_each_surface_shape(
    gated: tuple[RunningGateway, Gate, Replica],
) -> None:
    gw, gate, replica = gated
    before = replica.app.requests
    deny = {"x-test-deny": "1", "x-request-id": "req-1"}
    with gw.client() as client:
        plain = client.post("/endpoints/e/echo", content=b"hi", headers=deny)
        openai = client.post("/v1/chat/completions", content=chat("e"), headers=deny)
    assert plain.status_code == 401
    assert plain.headers["content-type"] == "application/problem+json"
    assert plain.headers["x-request-id"] == "req-1"
    assert plain.json()["title"] == "Unauthorized"
    assert plain.json()["detail"] == "denied by the test gate"
    assert openai.status_code == 401
    assert openai.headers["content-type"] == "application/json"
    assert openai.json()["error"]["message"] == "denied by the test gate"
    assert openai.json()["error"]["code"] == "unauthorized"
    assert replica.app.requests == before  # refused requests never reach a replica
    assert wait_until(
        lambda: gate.finished == [("e", "/echo", 401), ("e", "/v1/chat/completions", 401)]
    ), gate.finished
    gw.settle()
    load = gw.gateway.load_snapshot()["e"]
    assert (load.requests, load.succeeded, load.errors) == (2, 0, 0)  # counted as 4xx


def test_stages_run_before_the_endpoints_own_refusals(
    gated: tuple[RunningGateway, Gate, Replica],
) -> None:
    gw, gate, _ = gated
    with gw.client() as client:
        denied = client.post("/endpoints/sleepy/x", headers={"x-test-deny": "1"})
        paused = client.post("/endpoints/sleepy/x")
    assert denied.status_code == 401  # the stage answered: the pause was not disclosed
    assert paused.status_code == 503
    assert paused.json()["title"] == "Endpoint paused"
    assert wait_until(lambda: gate.finished == [("sleepy", "/x", 401), ("sleepy", "/x", 503)]), (
        gate.finished
    )


def test_unrouted_requests_do_not_reach_the_stages(
    gated: tuple[RunningGateway, Gate, Replica],
) -> None:
    gw, gate, _ = gated
    with gw.client() as client:
        assert client.post("/endpoints/nope/x").status_code == 404
        assert client.post("/v1/chat/completions", content=chat("nope")).status_code == 404
        assert client.get("/endpoints/e/metrics").status_code == 404  # a replica's own
        assert client.get("/v1/models").status_code == 200  # answered by the router itself
    assert gate.checked == []
    assert gate.finished == []


class Broken(Gate):
    """A stage whose `finish` raises (a bug in a later issue's stage)."""

    def finish(self, call: Invocation, status: int, seconds: float) -> None:
        super().finish(call, status, seconds)
        raise RuntimeError("stage bug")


def test_only_stages_that_checked_finish_and_one_that_raises_stops_no_other(
    setup: tuple[Servers, Replica],
) -> None:
    """Stages [first, second]: a refusal by the first never reaches the second, so the second
    does not `finish` either (a rate limit would release a slot it never took); a `finish`
    that raises is logged and the next stage still finishes."""
    servers, replica = setup
    first, second = Broken(), Gate()
    gw = servers.gateway(stages=[first, second])
    gw.publish(EndpointRoute("e", EndpointStatus.RUNNING, (replica.route,)))
    with gw.client() as client:
        assert client.post("/endpoints/e/x", headers={"x-test-deny": "1"}).status_code == 401
        assert client.post("/endpoints/e/echo", content=b"hi").status_code == 200
    assert wait_until(lambda: first.finished == [("e", "/x", 401), ("e", "/echo", 200)]), (
        first.finished
    )
    assert len(second.checked) == 1  # the refused request never reached it
    assert wait_until(lambda: second.finished == [("e", "/echo", 200)]), (
        second.finished
    )  # finished despite first's bug
