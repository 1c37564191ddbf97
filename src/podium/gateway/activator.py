"""Admission to replicas: one slot per request, held in FIFO order when no slot is free.

A replica takes at most `EndpointRoute.max_concurrency` requests from the gateway at once.
A request that finds no free slot (no ready replica at all: scaled to zero, starting,
crashed; or every ready replica at its limit) is *held* here instead of being refused:

* it is counted in its endpoint's `EndpointMeter.held` (the autoscaler reads it through
  `load_snapshot()`), and when no replica is ready the controller is woken at once;
* it waits, first come first served, until a slot frees (a request to the endpoint ends)
  or the routing table changes (a replica became ready), and is then forwarded;
* at most `max_queued_requests` wait per endpoint (beyond: 503 + Retry-After), each for at
  most `wait_timeout_s` or the request's `X-Podium-Wait-Timeout` header (then: 504);
* a client that disconnects while held leaves the queue (when its body was read whole);
* a paused or failed endpoint, or one deleted meanwhile, answers its held requests at once.

The slot count of a replica is the balancer's outstanding count, which the proxy takes
when it picks a replica: `admit` hands the proxy a route narrowed to the replicas with a
free slot, and the caller forwards without awaiting anything in between. A slot granted
to a held request is reserved (`_Queue.granted`) until that request's task runs again.
Everything here runs on the gateway's event loop; the routing table listener only hands
the news over with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from podium.core.phases import EndpointStatus
from podium.core.request_record import ErrorClass
from podium.core.routing import EndpointRoute, RoutingSource, RoutingTable, Waker
from podium.gateway.balancer import Balancer
from podium.gateway.metering import EndpointMeter
from podium.gateway.responses import Receive, Send, send_problem

WAIT_HEADER = b"x-podium-wait-timeout"
MAX_WAIT_S = 3600.0


class InvalidWaitTimeout(ValueError):
    """The `X-Podium-Wait-Timeout` header is not a number of seconds in range."""


def wait_timeout(headers: Iterable[tuple[bytes, bytes]]) -> float | None:
    """The request's `X-Podium-Wait-Timeout` in seconds, or None when it has none."""
    for name, value in headers:
        if name == WAIT_HEADER:
            try:
                seconds = float(value)
            except ValueError:
                seconds = math.nan
            if not 0 <= seconds <= MAX_WAIT_S:  # also refuses nan
                text = value.decode("latin-1")
                raise InvalidWaitTimeout(
                    f"X-Podium-Wait-Timeout must be a number of seconds from 0 to "
                    f"{MAX_WAIT_S:g}, not {text!r}"
                )
            return seconds
    return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer the activator (or a stage) gives instead of a slot; `error` is what the
    request record says of it."""

    status: int
    detail: str
    title: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    code: str | None = None  # OpenAI's error `code` under /v1/ (default: the title's slug)
    error: ErrorClass | None = None

    async def send(self, send: Send, request_id: str) -> None:
        await send_problem(
            send,
            self.status,
            self.detail,
            title=self.title,
            request_id=request_id,
            headers=self.headers,
            openai_code=self.code,
            **self.extra,
        )


def paused(name: str) -> Refusal:
    return Refusal(
        503,
        f"endpoint {name!r} is paused; resume it with `podium resume {name}`",
        "Endpoint paused",
        extra={"endpoint": name, "endpoint_status": "paused"},
        error=ErrorClass.PAUSED,
    )


def failed(name: str) -> Refusal:
    return Refusal(
        503,
        f"endpoint {name!r} has failed and has no ready replica; "
        f"`podium events {name}` says why, an update restarts it",
        "Endpoint failed",
        extra={"endpoint": name, "endpoint_status": "failed"},
        error=ErrorClass.PAUSED,
    )


def _gone(name: str) -> Refusal:
    return Refusal(
        404,
        f"endpoint {name!r} not found (it was deleted while the request waited)",
        "Not Found",
        extra={"endpoint": name},
        error=ErrorClass.NO_REPLICA,
    )


def refusal_for(route: EndpointRoute) -> Refusal | None:
    """Why requests for this endpoint must not wait, or None: they may."""
    if route.status is EndpointStatus.PAUSED:
        return paused(route.name)
    if route.status is EndpointStatus.FAILED and not route.replicas:
        return failed(route.name)
    return None


# A waiter's future: None when it was granted a slot, else the refusal to send.
Waiter = asyncio.Future[Refusal | None]


class _Queue:
    """One endpoint's held requests (oldest first) and the slots granted to some of them."""

    __slots__ = ("granted", "waiters", "waiting")

    def __init__(self) -> None:
        self.waiters: deque[Waiter] = deque()  # may hold cancelled futures, skipped
        self.waiting = 0  # live waiters in `waiters`
        self.granted = 0  # granted a slot, their tasks not yet running again

    def discard(self) -> None:
        """A waiter gave up: compact once the cancelled ones outnumber the live ones."""
        self.waiting -= 1
        if len(self.waiters) > 2 * self.waiting + 64:
            self.waiters = deque(f for f in self.waiters if not f.done())


class Activator:
    """Grants replica slots; holds requests that find none (see the module docstring)."""

    def __init__(self, routing: RoutingSource, balancer: Balancer, wake: Waker | None) -> None:
        self._routing = routing
        self._balancer = balancer
        self._wake = wake
        # Endpoints with held requests or reserved slots; empty almost always, so
        # `name in queues` is the hot path's whole test.
        self.queues: dict[str, _Queue] = {}
        self._table_waiters: list[asyncio.Future[None]] = []  # see `newer_table`
        self._unsubscribe: Callable[[], None] | None = None

    # -- slots ----------------------------------------------------------------------------

    def _free(self, route: EndpointRoute, reserved: int) -> EndpointRoute | None:
        """The route narrowed to replicas with a free slot, or None: more than `reserved`
        slots are needed. Ejected replicas count only when every replica is ejected."""
        limit = route.max_concurrency
        outstanding, ejected = self._balancer.outstanding, self._balancer.is_ejected
        replicas = route.replicas
        healthy = [r for r in replicas if not ejected(r.replica_id)] or replicas
        free = []
        slots = 0
        for r in healthy:
            n = limit - outstanding(r.replica_id)
            if n > 0:
                free.append(r)
                slots += n
        if slots <= reserved:
            return None
        if len(free) == len(replicas):
            return route
        return replace(route, replicas=tuple(free))

    def _slots(self, route: EndpointRoute) -> int:
        limit, outstanding = route.max_concurrency, self._balancer.outstanding
        ejected = self._balancer.is_ejected
        replicas = route.replicas
        healthy = [r for r in replicas if not ejected(r.replica_id)] or replicas
        return sum(max(0, limit - outstanding(r.replica_id)) for r in healthy)

    # -- admission ------------------------------------------------------------------------

    async def admit(
        self,
        route: EndpointRoute,
        meter: EndpointMeter,
        wait_s: float | None,
        receive: Receive | None,
    ) -> EndpointRoute | Refusal | None:
        """The route to forward to at once (only replicas with a free slot), a refusal, or
        None when the client left while held. `receive` (given when the request body was
        read whole) lets a held request notice its client leave."""
        name = route.name
        route = self._routing.table.endpoints.get(name, route)  # the newest, after the body
        q = self.queues.get(name)
        if q is None or not q.waiting:
            target = self._free(route, q.granted if q else 0)
            if target is not None:
                return target
        refusal = refusal_for(route)
        if refusal is not None:
            return refusal
        held = q.waiting if q else 0
        if held >= route.max_queued_requests:
            self._wake_if_cold(route)
            limit = route.max_queued_requests
            return Refusal(
                503,
                f"endpoint {name!r} already holds {held} request(s) waiting for a replica "
                f"(max_queued_requests: {limit}); retry later",
                "Too many waiting requests",
                ((b"retry-after", b"1"),),
                {"endpoint": name, "endpoint_status": route.status.value, "limit": limit},
                error=ErrorClass.QUEUE_FULL,
            )
        if q is None:
            q = self.queues[name] = _Queue()
        timeout = route.wait_timeout_s if wait_s is None else wait_s
        return await self._hold(q, route, meter, timeout, receive)

    async def _hold(
        self,
        q: _Queue,
        route: EndpointRoute,
        meter: EndpointMeter,
        timeout: float,
        receive: Receive | None,
    ) -> EndpointRoute | Refusal | None:
        self._listen()
        name = route.name
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        watcher = asyncio.ensure_future(_disconnected(receive)) if receive is not None else None
        meter.held += 1
        head = False  # a request that lost its granted slot waits again at the front
        try:
            while True:
                fut: Waiter = loop.create_future()
                if head:
                    q.waiters.appendleft(fut)
                else:
                    q.waiters.append(fut)
                q.waiting += 1
                self._wake_if_cold(route)
                self._dispatch(name)  # the table may have changed since it was read
                outcome = await self._wait(q, name, fut, watcher, deadline)
                if outcome is _LEFT:
                    return None
                if outcome is _TIMEOUT:
                    return _timed_out(route, self._routing.table, timeout)
                if isinstance(outcome, Refusal):
                    return outcome
                q.granted -= 1
                current = self._routing.table.endpoints.get(name)
                if current is None:
                    return _gone(name)
                refusal = refusal_for(current)
                if refusal is not None:
                    return refusal
                target = self._free(current, q.granted)
                if target is not None:
                    return target
                route, head = current, True  # the slot went away (its replica left)
        finally:
            meter.held -= 1
            if watcher is not None:
                watcher.cancel()
            if not q.waiting and not q.granted and self.queues.get(name) is q:
                del self.queues[name]

    async def _wait(
        self,
        q: _Queue,
        name: str,
        fut: Waiter,
        watcher: asyncio.Future[None] | None,
        deadline: float,
    ) -> object:
        """The waiter's outcome (None: granted; a Refusal), `_LEFT` or `_TIMEOUT`."""
        taken = False
        try:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining > 0:
                waits: set[asyncio.Future[Any]] = {fut}
                if watcher is not None:
                    waits.add(watcher)
                await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if watcher is not None and watcher.done():
                return _LEFT
            if fut.done():
                taken = True
                return fut.result()
            return _TIMEOUT
        finally:
            if not taken:
                if not fut.done():
                    fut.cancel()
                    q.discard()
                elif fut.result() is None:  # granted as it gave up: pass the slot on
                    q.granted -= 1
                    self._dispatch(name)

    async def newer_table(self, version: int, timeout: float) -> None:
        """Return once the routing table is newer than `version`, or after `timeout` s."""
        self._listen()
        if self._routing.table.version > version:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._table_waiters.append(fut)
        try:
            await asyncio.wait({fut}, timeout=timeout)
        finally:
            if fut in self._table_waiters:
                self._table_waiters.remove(fut)

    def _wake_if_cold(self, route: EndpointRoute) -> None:
        if not route.replicas and self._wake is not None:
            self._wake(route.name)

    def done(self, name: str) -> None:
        """A request of this endpoint left its replica: its slot may go to a held one."""
        if name in self.queues:
            self._dispatch(name)

    # -- release --------------------------------------------------------------------------

    def _dispatch(self, name: str) -> None:
        """Grant free slots to the oldest held requests, or answer them all if they must
        not wait any longer."""
        q = self.queues.get(name)
        if q is None or not q.waiting:
            return
        route = self._routing.table.endpoints.get(name)
        refusal = _gone(name) if route is None else refusal_for(route)
        if refusal is not None:
            self._settle(q, refusal)
            return
        assert route is not None
        slots = self._slots(route) - q.granted
        waiters = q.waiters
        while slots > 0 and waiters:
            fut = waiters.popleft()
            if fut.done():
                continue
            fut.set_result(None)
            q.waiting -= 1
            q.granted += 1
            slots -= 1

    def _settle(self, q: _Queue, answer: Refusal) -> None:
        while q.waiters:
            fut = q.waiters.popleft()
            if not fut.done():
                fut.set_result(answer)
        q.waiting = 0

    def _on_table(self) -> None:
        self._release_table_waiters()
        for name in list(self.queues):
            self._dispatch(name)

    def _release_table_waiters(self) -> None:
        waiters, self._table_waiters = self._table_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _listen(self) -> None:
        """Follow routing table changes (from the first held request on)."""
        if self._unsubscribe is not None:
            return
        loop = asyncio.get_running_loop()

        def published(table: RoutingTable) -> None:  # on the publishing thread
            if (self.queues or self._table_waiters) and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(self._on_table)

        self._unsubscribe = self._routing.subscribe(published)

    def close(self) -> None:
        """Stop following the table; held requests are answered 503 (shutting down)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        answer = Refusal(
            503,
            "the gateway is shutting down; retry",
            "Service Unavailable",
            error=ErrorClass.NO_REPLICA,
        )
        self._release_table_waiters()
        for q in self.queues.values():
            self._settle(q, answer)


_LEFT = object()
_TIMEOUT = object()


async def _disconnected(receive: Receive) -> None:
    """Returns when the client disconnects (its request body was already read)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # the server's receive failed: the client is gone as well
        return


def _timed_out(route: EndpointRoute, table: RoutingTable, waited: float) -> Refusal:
    now = table.endpoints.get(route.name, route)
    name, status = route.name, now.status.value
    if now.replicas:
        why = f"every ready replica stayed busy (max_concurrency: {now.max_concurrency})"
    else:
        why = f"no replica became ready (status: {status})"
    return Refusal(
        504,
        f"endpoint {name!r}: waited {waited:g} s for a replica; {why}",
        "No replica in time",
        extra={"endpoint": name, "endpoint_status": status, "waited_s": waited},
        error=ErrorClass.QUEUE_TIMEOUT,
    )
