"""The activator at its edges: what a held request gets when things change between the
moment a slot is granted to it and the moment its task runs again, and how slots are
counted while some replicas are ejected.

A real routing table holder, balancer and meter on a real event loop, no sockets. The test
plays the proxy: it takes (`acquire`) and frees (`release` + `done`) replica slots. Every
wait is counted in event-loop turns, never in seconds: an answer that is due comes within
a few turns, so a request still unanswered after `TURNS` turns is one that was forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from podium.core.asgi import Message
from podium.core.phases import EndpointStatus
from podium.core.routing import (
    EndpointRoute,
    InProcessRoutingSource,
    ReplicaRoute,
    RoutingTable,
)
from podium.gateway.activator import Activator, Refusal
from podium.gateway.balancer import Balancer
from podium.gateway.metering import EndpointMeter

A, B = (ReplicaRoute(rid, "127.0.0.1", 1, revision=1) for rid in "ab")
GUARD_S = 30.0  # bounds the whole test, so that a broken build fails instead of hanging
TURNS = 100  # event-loop turns within which a due answer comes (it takes a handful)

Admitted = EndpointRoute | Refusal | None


def ep(
    *replicas: ReplicaRoute,
    status: EndpointStatus = EndpointStatus.RUNNING,
) -> EndpointRoute:
    return EndpointRoute("e", status, tuple(replicas), max_concurrency=1)


class RacingHolder(InProcessRoutingSource):
    """A holder whose controller publishes `pending` just before a listener subscribes:
    the table changes between the activator reading it and following it."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: EndpointRoute | None = None

    def subscribe(self, listener: Callable[[RoutingTable], None]) -> Callable[[], None]:
        if self.pending is not None:
            self.publish({"e": self.pending})
        return super().subscribe(listener)


class Client:
    """A held request's client; `leave()` makes its `receive` report the disconnect."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()

    def leave(self) -> None:
        self.gone.set()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}


class Admission:
    def __init__(self, holder: InProcessRoutingSource | None = None) -> None:
        self.holder = holder or InProcessRoutingSource()
        self.balancer = Balancer(eject_s=600)
        self.woken: list[str] = []
        self.activator = Activator(self.holder, self.balancer, self.woken.append)
        self.meter = EndpointMeter("e")

    def publish(self, route: EndpointRoute | None) -> None:
        self.holder.publish({} if route is None else {"e": route})

    async def admit(self, wait_s: float, client: Client | None = None) -> Admitted:
        receive = client.receive if client is not None else None
        return await self.activator.admit(ep(), self.meter, wait_s, receive)

    def hold(self, client: Client | None = None) -> asyncio.Future[Admitted]:
        return asyncio.ensure_future(self.admit(GUARD_S, client))

    async def until_held(self, n: int, *waiting: asyncio.Future[Admitted]) -> None:
        while self.meter.held != n:
            for fut in waiting:
                assert not fut.done(), f"answered, not held: {fut.result()}"
            await asyncio.sleep(0)

    def free(self, replica_id: str) -> None:
        """A request forwarded to `replica_id` ended (what the proxy does)."""
        self.balancer.release(replica_id)
        self.activator.done("e")


async def turns(n: int = TURNS) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def answer(fut: asyncio.Future[Admitted]) -> Admitted:
    """The request's answer, which is due now: it must come within `TURNS` loop turns."""
    for _ in range(TURNS):
        if fut.done():
            return fut.result()
        await asyncio.sleep(0)
    raise AssertionError("a request that should have been answered is still held")


async def still_held(*held: asyncio.Future[Admitted]) -> None:
    await turns()
    for fut in held:
        assert not fut.done(), f"answered, not held: {fut.result()}"


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, GUARD_S))


def replica_ids(admitted: Admitted) -> list[str]:
    assert isinstance(admitted, EndpointRoute), admitted
    return [r.replica_id for r in admitted.replicas]


# -- slots while replicas are ejected --------------------------------------------------------


def test_an_ejected_replicas_idle_slot_is_never_granted_to_a_held_request() -> None:
    """The slots counted for held requests are those `admit` hands out: a held request is
    not granted a slot it cannot use (it would spin, granted and re-held, forever)."""

    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A, B))
        adm.balancer.eject("b")  # b idle but ejected, a busy
        adm.balancer.acquire("a")
        held = adm.hold()
        await adm.until_held(1, held)
        await still_held(held)
        queue = adm.activator.queues["e"]
        assert (queue.waiting, queue.granted) == (1, 0)
        late = await adm.admit(wait_s=0)  # may not wait: answered at once
        assert isinstance(late, Refusal) and late.status == 504
        adm.free("a")
        assert replica_ids(await answer(held)) == ["a"]
        assert adm.activator.queues == {}

    run(main())


def test_a_healthy_replicas_freed_slot_goes_to_a_held_request_beside_a_busy_ejected_one() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A, B))
        adm.balancer.eject("b")
        adm.balancer.acquire("a")
        adm.balancer.acquire("b")
        held = adm.hold()
        await adm.until_held(1, held)
        adm.free("a")
        assert replica_ids(await answer(held)) == ["a"]

    run(main())


# -- a table that changes --------------------------------------------------------------------


def test_a_replica_published_just_as_the_first_request_is_held_releases_it() -> None:
    """The activator follows the table from the first held request on; a table published
    between its read and the subscription must not leave the request waiting."""

    async def main() -> None:
        holder = RacingHolder()
        adm = Admission(holder)
        adm.publish(ep(status=EndpointStatus.INITIALIZING))
        holder.pending = ep(A)
        held = adm.hold()
        assert replica_ids(await answer(held)) == ["a"]
        assert adm.activator.queues == {}

    run(main())


def test_one_table_change_releases_as_many_held_requests_as_it_brings_slots() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
        held = [adm.hold() for _ in range(3)]
        await adm.until_held(3, *held)
        adm.publish(ep(A, B))  # two slots: the two oldest go, the third waits
        for fut in held[:2]:
            assert replica_ids(await answer(fut)) == ["a", "b"]
        await still_held(held[2])
        adm.balancer.acquire("a")
        adm.balancer.acquire("b")
        adm.free("b")
        assert replica_ids(await answer(held[2])) == ["b"]
        assert adm.activator.queues == {}

    run(main())


# -- granted, but the slot is gone before the request runs -----------------------------------


def test_a_request_that_lost_its_granted_slot_waits_again_at_the_front() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A))
        adm.balancer.acquire("a")
        first, second = adm.hold(), adm.hold()
        await adm.until_held(2, first, second)
        adm.free("a")  # the slot is granted to `first`...
        adm.publish(ep(status=EndpointStatus.INITIALIZING))  # ...and a leaves at once
        await still_held(first, second)
        assert adm.meter.held == 2
        assert adm.woken[-1] == "e"  # no replica any more: the controller is woken
        adm.publish(ep(A))  # one slot: for the older request
        assert replica_ids(await answer(first)) == ["a"]
        await still_held(second)
        adm.balancer.acquire("a")
        adm.free("a")
        assert replica_ids(await answer(second)) == ["a"]
        assert adm.activator.queues == {}

    run(main())


def test_a_request_granted_a_slot_as_its_endpoint_is_paused_is_refused() -> None:
    """Paused while its replica still drains: the granted request must not be forwarded."""

    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A))
        adm.balancer.acquire("a")
        held = adm.hold()
        await adm.until_held(1, held)
        adm.free("a")
        adm.publish(ep(A, status=EndpointStatus.PAUSED))
        refusal = await answer(held)
        assert isinstance(refusal, Refusal), refusal
        assert (refusal.status, refusal.title) == (503, "Endpoint paused")
        assert refusal.extra == {"endpoint": "e", "endpoint_status": "paused"}
        assert adm.activator.queues == {}

    run(main())


def test_a_request_granted_a_slot_as_its_endpoint_is_deleted_is_404() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A))
        adm.balancer.acquire("a")
        held = adm.hold()
        await adm.until_held(1, held)
        adm.free("a")
        adm.publish(None)
        refusal = await answer(held)
        assert isinstance(refusal, Refusal), refusal
        assert (refusal.status, refusal.title) == (404, "Not Found")
        assert refusal.detail == "endpoint 'e' not found (it was deleted while the request waited)"
        assert refusal.extra == {"endpoint": "e"}
        assert adm.activator.queues == {}

    run(main())


def test_a_request_arriving_before_granted_requests_run_does_not_take_their_slots() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A, B))
        adm.balancer.acquire("a")
        adm.balancer.acquire("b")
        held = [adm.hold(), adm.hold()]
        await adm.until_held(2, *held)
        adm.balancer.release("a")
        adm.balancer.release("b")
        adm.activator.done("e")  # both slots granted; the held tasks have not run yet
        late = await adm.admit(wait_s=0)  # runs to its answer before they do
        assert isinstance(late, Refusal) and late.status == 504, late
        for fut in held:
            assert replica_ids(await answer(fut)) == ["a", "b"]
        assert adm.activator.queues == {}

    run(main())


# -- clients that leave ----------------------------------------------------------------------


def test_a_slot_granted_to_a_request_whose_client_just_left_goes_to_the_next() -> None:
    """One slot, passed on once: to the next request only, not to every one behind it."""

    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A))
        adm.balancer.acquire("a")
        client = Client()
        leaving, staying, third = adm.hold(client), adm.hold(), adm.hold()
        await adm.until_held(3, leaving, staying, third)
        client.leave()
        adm.free("a")  # granted to `leaving`, whose client is gone by the time it runs
        assert await answer(leaving) is None
        assert replica_ids(await answer(staying)) == ["a"]
        adm.balancer.acquire("a")  # the proxy forwards `staying`: a is busy again
        await still_held(third)
        late = await adm.admit(wait_s=0)
        assert isinstance(late, Refusal) and late.status == 504, late
        adm.free("a")
        assert replica_ids(await answer(third)) == ["a"]
        assert adm.activator.queues == {}

    run(main())


def test_a_client_that_left_ahead_of_a_held_request_does_not_block_it() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(status=EndpointStatus.SCALED_TO_ZERO))
        client = Client()
        leaving = adm.hold(client)
        await adm.until_held(1, leaving)
        staying = adm.hold()
        await adm.until_held(2, leaving, staying)
        client.leave()
        assert await answer(leaving) is None
        assert adm.meter.held == 1
        adm.publish(ep(A))
        assert replica_ids(await answer(staying)) == ["a"]
        assert adm.activator.queues == {}

    run(main())
