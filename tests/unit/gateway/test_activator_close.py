"""The activator at shutdown: every held request gets its answer (503, retry), and the
activator stops following the routing table, so a table published later wakes nothing."""

from __future__ import annotations

from podium.core.request_record import ErrorClass
from podium.gateway.activator import Refusal
from tests.unit.gateway.test_activator_edges import A, Admission, answer, ep, run, turns


def test_close_answers_every_held_request_503_and_stops_following_the_table() -> None:
    async def main() -> None:
        adm = Admission()
        adm.publish(ep(A))
        adm.balancer.acquire("a")  # busy: the next requests are held
        held = [adm.hold(), adm.hold()]
        await adm.until_held(2, *held)
        listeners = len(adm.holder._listeners)  # the subscription is the point
        adm.activator.close()
        for fut in held:
            refusal = await answer(fut)
            assert refusal == Refusal(
                503,
                "the gateway is shutting down; retry",
                "Service Unavailable",
                error=ErrorClass.NO_REPLICA,  # what its request record says
            )
        assert adm.activator.queues == {}
        assert len(adm.holder._listeners) == listeners - 1
        adm.activator.close()  # twice is harmless
        adm.publish(ep(A))  # nothing follows the table any more: no pass, no error
        await turns()
        assert adm.activator.queues == {}

    run(main())
