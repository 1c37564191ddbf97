"""`Activator.admit` itself: which route a request is forwarded to, when it is held instead,
and which answer it gets when it may not wait.

The harness of `test_activator_edges` (a real routing table holder, balancer and meter on a
real event loop, no sockets; the test plays the proxy). Waits are counted in loop turns.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, ReplicaRoute
from podium.gateway.activator import Refusal
from tests.unit.gateway.test_activator_edges import (
    GUARD_S,
    A,
    Admission,
    Admitted,
    answer,
    ep,
    replica_ids,
    run,
    still_held,
)

B = ReplicaRoute("b", "127.0.0.1", 1, revision=1)


async def admit(adm: Admission, route: EndpointRoute, wait_s: float = GUARD_S) -> Admitted:
    """A request the proxy routed with `route` (read before its body)."""
    return await adm.activator.admit(route, adm.meter, wait_s, None)


def hold(adm: Admission, route: EndpointRoute) -> asyncio.Future[Admitted]:
    return asyncio.ensure_future(admit(adm, route))


# -- the route: the table's newest, read after the body ----------------------------------------


def test_a_request_goes_to_the_replicas_of_the_newest_table_not_those_it_was_routed_with() -> None:
    """The table changed while the body was read: a's replica left, b came."""

    async def main() -> None:
        adm = Admission()
        adm.publish(ep(B))
        assert replica_ids(await admit(adm, ep(A))) == ["b"]

    run(main())


def test_a_request_whose_endpoint_was_deleted_while_its_body_was_read_is_404() -> None:
    """Routed while the endpoint was cold, which is gone from the table by the time the
    body is read: answered 404 (not an error of the gateway's own)."""

    async def main() -> None:
        adm = Admission()
        adm.publish(None)
        refusal = await admit(adm, ep(status=EndpointStatus.SCALED_TO_ZERO))
        assert isinstance(refusal, Refusal), refusal
        assert (refusal.status, refusal.title) == (404, "Not Found")
        assert refusal.extra == {"endpoint": "e"}
        assert adm.meter.held == 0
        assert adm.activator.queues == {}

    run(main())


# -- a free slot: forwarded at once, never held ------------------------------------------------


def test_an_endpoint_that_holds_nothing_still_forwards_to_a_free_slot() -> None:
    """max_queued_requests: 0 refuses to hold, not to forward: the replica's one free slot
    is the request's, with no queue in between."""

    async def main() -> None:
        adm = Admission()
        route = replace(ep(A), max_queued_requests=0)
        adm.publish(route)
        assert replica_ids(await admit(adm, route)) == ["a"]
        adm.balancer.acquire("a")  # forwarded: a is busy now
        refusal = await admit(adm, route)
        assert isinstance(refusal, Refusal), refusal
        assert (refusal.status, refusal.title) == (503, "Too many waiting requests")
        assert adm.meter.held == 0

    run(main())


def test_held_requests_keep_their_order_against_a_newcomer_that_arrives_with_the_news() -> None:
    """A replica is published while a request is held; a new request runs before the
    gateway has handled the news. The slot is the older request's: the newcomer waits."""

    async def main() -> None:
        adm = Admission()
        adm.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
        oldest = adm.hold()
        await adm.until_held(1, oldest)

        async def newcomer() -> Admitted:
            adm.publish(ep(A))  # handed to the event loop; the admission below runs first
            return await admit(adm, ep(A))

        late = asyncio.ensure_future(newcomer())
        assert replica_ids(await answer(oldest)) == ["a"]
        await still_held(late)
        adm.balancer.acquire("a")  # the proxy forwards the oldest
        adm.free("a")
        assert replica_ids(await answer(late)) == ["a"]
        assert adm.activator.queues == {}

    run(main())


# -- requests that may not wait ----------------------------------------------------------------


def test_a_request_to_an_endpoint_paused_while_its_body_was_read_is_told_so() -> None:
    """Answered "paused" (how to resume), not "too many waiting" (retry later), and the
    controller is not woken for an endpoint that must stay down."""

    async def main() -> None:
        adm = Admission()
        for max_queued in (0, 1000):
            adm.publish(replace(ep(status=EndpointStatus.PAUSED), max_queued_requests=max_queued))
            refusal = await admit(adm, ep(status=EndpointStatus.SCALED_TO_ZERO))
            assert isinstance(refusal, Refusal), refusal
            why = (max_queued, refusal.detail)
            assert (refusal.status, refusal.title) == (503, "Endpoint paused"), why
            assert refusal.extra == {"endpoint": "e", "endpoint_status": "paused"}
        assert adm.woken == []
        assert adm.meter.held == 0
        assert adm.activator.queues == {}

    run(main())


def test_max_queued_requests_is_how_many_are_held_not_one_fewer() -> None:
    async def main() -> None:
        adm = Admission()
        route = replace(ep(status=EndpointStatus.SCALED_TO_ZERO), max_queued_requests=1)
        adm.publish(route)
        first = hold(adm, route)
        await adm.until_held(1, first)
        refusal = await admit(adm, route)
        assert isinstance(refusal, Refusal), refusal
        assert (refusal.status, refusal.title) == (503, "Too many waiting requests")
        assert refusal.headers == ((b"retry-after", b"1"),)
        assert refusal.extra == {"endpoint": "e", "endpoint_status": "scaled_to_zero", "limit": 1}
        assert adm.woken == ["e", "e"]  # cold: woken by the held one and by the refused one
        adm.publish(replace(route, replicas=(A,)))
        assert replica_ids(await answer(first)) == ["a"]

    run(main())
