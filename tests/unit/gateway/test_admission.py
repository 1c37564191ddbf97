"""The activator's admission on its own: real routing table holder, balancer and meter on a
real event loop, no sockets.

`admit` hands the proxy the route narrowed to the replicas that have a free slot (not
ejected, unless every replica is), or holds the request; what a held request is answered
when it cannot be served (the problem fields the client sees) is decided here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute
from podium.gateway.activator import (
    WAIT_HEADER,
    Activator,
    InvalidWaitTimeout,
    Refusal,
    wait_timeout,
)
from podium.gateway.balancer import Balancer
from podium.gateway.metering import EndpointMeter

A, B, C = (ReplicaRoute(rid, "127.0.0.1", 1, revision=1) for rid in "abc")
GUARD_S = 30.0  # a bound on waits that end on an event, so a broken build fails, not hangs


def ep(
    *replicas: ReplicaRoute,
    status: EndpointStatus = EndpointStatus.RUNNING,
    limit: int = 1,
) -> EndpointRoute:
    return EndpointRoute("e", status, tuple(replicas), max_concurrency=limit)


class Admission:
    """An activator over a table holder and a balancer, as the gateway builds it."""

    def __init__(self) -> None:
        self.holder = InProcessRoutingSource()
        self.balancer = Balancer(eject_s=600)
        self.woken: list[str | None] = []
        self.activator = Activator(self.holder, self.balancer, self.woken.append)
        self.meter = EndpointMeter("e")

    def publish(self, route: EndpointRoute | None) -> None:
        self.holder.publish({} if route is None else {"e": route})

    async def admit(
        self, route: EndpointRoute, wait_s: float | None = None
    ) -> EndpointRoute | Refusal | None:
        return await self.activator.admit(route, self.meter, wait_s, None)

    async def until_held(self, n: int, *waiting: asyncio.Future[Any]) -> None:
        """Until `n` requests are held; fails if one of `waiting` was answered instead."""
        while self.meter.held != n:
            for fut in waiting:
                assert not fut.done(), f"answered, not held: {fut.result()}"
            await asyncio.sleep(0)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, GUARD_S))


def replica_ids(admitted: EndpointRoute | Refusal | None) -> list[str]:
    assert isinstance(admitted, EndpointRoute), admitted
    return [r.replica_id for r in admitted.replicas]


# -- X-Podium-Wait-Timeout ------------------------------------------------------------------


def test_wait_timeout_header_is_read_among_other_headers() -> None:
    assert wait_timeout([]) is None
    assert wait_timeout([(b"host", b"x")]) is None
    assert wait_timeout([(b"host", b"x"), (WAIT_HEADER, b"0.25")]) == 0.25
    # Both ends of the range are allowed: 0 (do not wait) and an hour.
    assert wait_timeout([(WAIT_HEADER, b"0")]) == 0.0
    assert wait_timeout([(WAIT_HEADER, b"3600")]) == 3600.0


@pytest.mark.parametrize("value", [b"3600.5", b"-0.1", b"nan", b"inf", b"soon", b"", b"\xe9"])
def test_wait_timeout_out_of_range_or_not_a_number_is_refused(value: bytes) -> None:
    with pytest.raises(InvalidWaitTimeout) as e:
        wait_timeout([(b"host", b"x"), (WAIT_HEADER, value)])
    text = value.decode("latin-1")
    assert str(e.value) == (
        f"X-Podium-Wait-Timeout must be a number of seconds from 0 to 3600, not {text!r}"
    )


# -- slots ----------------------------------------------------------------------------------


def test_admit_narrows_the_route_to_replicas_with_a_free_slot() -> None:
    async def main() -> None:
        adm = Admission()
        route = ep(A, B, C)
        adm.publish(route)
        assert await adm.admit(route) == route  # every replica free: the route itself
        adm.balancer.acquire("a")
        assert replica_ids(await adm.admit(route)) == ["b", "c"]
        adm.balancer.acquire("c")
        assert replica_ids(await adm.admit(route)) == ["b"]
        adm.balancer.acquire("b")  # every slot taken: held until the wait ends
        refusal = await adm.admit(route, wait_s=0)
        assert isinstance(refusal, Refusal) and refusal.status == 504
        assert "every ready replica stayed busy (max_concurrency: 1)" in refusal.detail
        assert adm.woken == []  # replicas are ready: no reason to wake the controller

    run(main())


def test_admit_skips_ejected_replicas_unless_every_replica_is_ejected() -> None:
    async def main() -> None:
        adm = Admission()
        route = ep(A, B, C, limit=2)
        adm.publish(route)
        adm.balancer.eject("b")
        assert replica_ids(await adm.admit(route)) == ["a", "c"]
        adm.balancer.eject("a")
        adm.balancer.eject("c")
        assert replica_ids(await adm.admit(route)) == ["a", "b", "c"]  # all: none skipped

    run(main())


def test_an_ejected_replicas_free_slots_do_not_admit_while_healthy_ones_are_busy() -> None:
    async def main() -> None:
        adm = Admission()
        route = ep(A, B)
        adm.publish(route)
        adm.balancer.eject("b")
        adm.balancer.acquire("a")
        held = asyncio.ensure_future(adm.admit(route, wait_s=GUARD_S))
        await adm.until_held(1, held)
        adm.balancer.release("a")
        adm.activator.done("e")  # a's request ended: its slot goes to the held one
        assert replica_ids(await held) == ["a"]
        assert adm.activator.queues == {}

    run(main())


# -- answers of held requests -----------------------------------------------------------------


def test_a_held_request_that_times_out_says_the_endpoints_status_now() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
        held = asyncio.ensure_future(adm.admit(ep(), wait_s=0.05))
        await adm.until_held(1, held)
        assert adm.woken == ["e"]
        adm.publish(ep(status=EndpointStatus.INITIALIZING))  # still no replica
        refusal = await held
        assert isinstance(refusal, Refusal)
        assert (refusal.status, refusal.title) == (504, "No replica in time")
        assert refusal.detail == (
            "endpoint 'e': waited 0.05 s for a replica; "
            "no replica became ready (status: initializing)"
        )
        assert refusal.extra == {
            "endpoint": "e",
            "endpoint_status": "initializing",
            "waited_s": 0.05,
        }

    run(main())


def test_a_failed_endpoint_answers_held_and_new_requests_at_once() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(status=EndpointStatus.INITIALIZING))
        held = asyncio.ensure_future(adm.admit(ep(), wait_s=GUARD_S))
        await adm.until_held(1, held)
        adm.publish(ep(status=EndpointStatus.FAILED))
        for refusal in (await held, await adm.admit(ep(), wait_s=GUARD_S)):
            assert isinstance(refusal, Refusal)
            assert (refusal.status, refusal.title) == (503, "Endpoint failed")
            assert "`podium events e` says why" in refusal.detail
            assert refusal.extra == {"endpoint": "e", "endpoint_status": "failed"}
        assert adm.activator.queues == {}

    run(main())


def test_an_endpoint_deleted_while_held_is_404() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
        held = asyncio.ensure_future(adm.admit(ep(), wait_s=GUARD_S))
        await adm.until_held(1, held)
        adm.publish(None)
        refusal = await held
        assert isinstance(refusal, Refusal)
        assert (refusal.status, refusal.title) == (404, "Not Found")
        assert refusal.detail == "endpoint 'e' not found (it was deleted while the request waited)"
        assert refusal.extra == {"endpoint": "e"}
        assert adm.activator.queues == {}

    run(main())


def test_requests_held_after_a_pause_are_admitted_once_it_resumes() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
        held = [asyncio.ensure_future(adm.admit(ep(), wait_s=GUARD_S)) for _ in range(2)]
        await adm.until_held(2, *held)
        adm.publish(ep(status=EndpointStatus.PAUSED))
        for h in held:
            refusal = await h
            assert isinstance(refusal, Refusal) and refusal.status == 503
        assert adm.activator.queues == {}
        adm.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
        again = asyncio.ensure_future(adm.admit(ep(), wait_s=GUARD_S))
        await adm.until_held(1, again)
        adm.publish(ep(A))
        assert replica_ids(await again) == ["a"]

    run(main())


# -- the queue ----------------------------------------------------------------------------------


def test_many_requests_giving_up_leave_the_queue_bounded_and_its_live_request_served() -> None:
    """Each request that stops waiting leaves a cancelled entry behind; they are dropped in
    one sweep once they outnumber the live ones (by 64), which must keep the live ones."""

    async def main() -> None:
        adm = Admission()
        adm.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
        live = asyncio.ensure_future(adm.admit(ep(), wait_s=GUARD_S))
        await adm.until_held(1, live)
        queue = adm.activator.queues["e"]
        for _ in range(200):
            refusal = await adm.admit(ep(), wait_s=0)  # queued behind `live`, gives up
            assert isinstance(refusal, Refusal) and refusal.status == 504
            assert queue.waiting == 1
            assert len(queue.waiters) <= 2 * queue.waiting + 64
        assert adm.activator.queues["e"] is queue
        adm.publish(ep(A))
        assert replica_ids(await live) == ["a"]
        assert adm.activator.queues == {}

    run(main())


# -- a newer routing table --------------------------------------------------------------------


def test_newer_table_returns_when_a_newer_table_is_published() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A))
        version = adm.holder.table.version
        await adm.activator.newer_table(version - 1, GUARD_S)  # already newer: at once
        await adm.activator.newer_table(version, 0.01)  # none comes: after the timeout
        waiting = asyncio.ensure_future(adm.activator.newer_table(version, 3600))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not waiting.done()
        adm.publish(ep(A, B))
        await waiting  # GUARD_S bounds it: a wait of 3600 s would fail the test

    run(main())
