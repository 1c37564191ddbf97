from __future__ import annotations

import asyncio

import pytest

from podium.core.errors import Retryable
from podium.replica.concurrency import Limiter


async def test_slots_then_queue_then_refusal() -> None:
    limiter = Limiter(max_concurrency=2, max_queue=1)
    await limiter.acquire()
    await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert (limiter.in_flight, limiter.queued) == (2, 1)
    with pytest.raises(Retryable, match="replica busy: 2 in flight and 1 queued") as caught:
        await limiter.acquire()
    assert caught.value.retry_after == 1.0
    limiter.release()  # the slot passes straight to the waiter
    await waiting
    assert (limiter.in_flight, limiter.queued) == (2, 0)
    limiter.release()
    limiter.release()
    assert limiter.in_flight == 0
    # The high-water marks remember what the current counts no longer show.
    assert (limiter.max_in_flight, limiter.max_queued) == (2, 1)


async def test_waiters_are_served_in_order() -> None:
    limiter = Limiter(max_concurrency=1, max_queue=3)
    await limiter.acquire()
    order: list[int] = []

    async def wait(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    tasks = [asyncio.create_task(wait(i)) for i in range(3)]
    await asyncio.sleep(0)
    for _ in range(3):
        limiter.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    limiter = Limiter(max_concurrency=1, max_queue=1)
    await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.queued == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limiter.queued == 0
    limiter.release()
    assert limiter.in_flight == 0


async def test_a_waiter_cancelled_as_it_is_granted_passes_the_slot_on() -> None:
    limiter = Limiter(max_concurrency=1, max_queue=2)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # grants `first` ...
    first.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    await second  # got the slot `first` gave back
    assert (limiter.in_flight, limiter.queued) == (1, 0)
