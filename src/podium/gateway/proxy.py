"""Forwarding one request to a replica, retrying elsewhere, and streaming the answer back.

A request goes to another replica only when it cannot have reached the model: connect
refused or timed out, the connection failed before the request was fully written, or the
replica reset it unread (`UpstreamFailed`). That replica is ejected. A request that was
sent whole and whose connection then ended before any response byte (`UpstreamDied`) is
never sent elsewhere: the replica may have crashed serving it, and a poison request would
crash every replica in turn. It gets a 502 that says the replica crashed while serving it
(with the reason the backend knows, e.g. out of memory), or, when the backend knows of no
exit, that the replica closed the connection without answering; the replica is reported.
A reused keep-alive connection that fails either way is first retried once on a new
connection to the same replica (the replica may have closed it as idle just then); if the
replica then cannot be reached, it died with the request and the same 502 follows.
An answer that declares a length up to 64 KiB comes whole from the transport, so a replica
that dies mid-answer gets the same 502; larger and streamed answers are passed on chunk by
chunk as they arrive, never buffered, and one cut short drops the client's connection.

Every request that reached a replica (or may have) is counted on that replica's meter
(`metering.ReplicaMeter`: the class of its answer, the upstream time, body bytes). With an
`Invocation` (`call`: the gateway has stages) the proxy also notes on it what the request
record needs (replica, upstream times, the head sent, stream events, bytes, the error
class); with `call` None it does nothing more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from podium.core.errors import TooLarge
from podium.core.request_record import ErrorClass
from podium.core.routing import EndpointRoute
from podium.core.settings import GatewaySettings
from podium.gateway.balancer import Balancer
from podium.gateway.body import StreamedBody
from podium.gateway.headers import RequestHead, response_headers
from podium.gateway.invocation import Invocation
from podium.gateway.metering import EndpointMeter, Meters
from podium.gateway.responses import Receive, Send, send_problem
from podium.gateway.transport import (
    Transport,
    UpstreamBroken,
    UpstreamDied,
    UpstreamFailed,
    UpstreamResponse,
)

FailureHook = Callable[[str, str], None]
# Why a replica's process ended (e.g. "ran out of memory (limit 256 MiB)"), as the backend
# knows it; None when not known (it waits a short, bounded time for the backend to see it).
WhyFailed = Callable[[str], Awaitable[str | None]]
CRASHED = "the replica crashed while serving this request"
CLOSED = (
    "the replica closed the connection without answering this request "
    "(it was not re-sent: it may have reached the model)"
)
_CONTENT_TYPE = b"content-type"
_EVENT_STREAM = b"text/event-stream"


class Unreached(Exception):
    """No replica of the route could be reached and nothing was sent to the client; the
    request (its body whole or unsent) can go through admission again."""


class Proxy:
    """`forward` answers one request: it always sends a response, or sees the client leave.

    `meters` holds the replicas' meters (the gateway's own `Meters`)."""

    def __init__(
        self,
        settings: GatewaySettings,
        balancer: Balancer,
        transport: Transport,
        *,
        meters: Meters | None = None,
        on_replica_failure: FailureHook | None = None,
        why_failed: WhyFailed | None = None,
    ) -> None:
        self._settings = settings
        self._balancer = balancer
        self._transport = transport
        self._meters = meters if meters is not None else Meters()
        self._on_failure = on_replica_failure
        self._why_failed = why_failed

    async def forward(
        self,
        route: EndpointRoute,
        meter: EndpointMeter,
        method: str,
        target: str,
        head: RequestHead,
        body: bytes | StreamedBody,
        receive: Receive,
        send: Send,
        *,
        raise_unreached: bool = False,
        call: Invocation | None = None,
    ) -> int:
        """Send the request to a replica (others on failure) and relay the response.

        Returns the status sent to the client, or 0 when the client left first. When no
        replica could be reached it answers 502, or raises `Unreached` if `raise_unreached`
        and the body can still be sent again. `call` (the gateway has stages) is told what
        happened on the way (module docstring).
        """
        balancer, transport = self._balancer, self._transport
        replicas = route.replicas
        tried: set[str] = set()
        last_error = "no replica answered"
        maybe_delivered = False  # a stale connection may have delivered it to this replica
        replica = balancer.pick(replicas)
        while replica is not None:
            replica_id = replica.replica_id
            balancer.acquire(replica_id)
            sent = time.perf_counter()
            if call is not None:
                call.replica_id = replica_id
                call.revision = replica.revision
                call.upstream_start = sent
            counted = False  # the attempt reached the replica (or may have): count it
            status = out = 0  # its status for the replica's meter, response bytes relayed
            try:
                try:
                    data = body.chunks() if isinstance(body, StreamedBody) else body
                    async with asyncio.timeout(route.timeout_s):
                        resp = await transport.request(
                            replica, method, target, head.headers, data, head.content_length
                        )
                except UpstreamDied as e:
                    resendable = not (isinstance(body, StreamedBody) and body.started)
                    if e.stale and replica_id not in tried and resendable:
                        tried.add(replica_id)  # perhaps closed as idle: try a new connection
                        maybe_delivered = True
                        continue
                    counted = True
                    status = await self._crashed(route, meter, replica_id, head, send, e, call)
                    return status
                except UpstreamFailed as e:
                    if maybe_delivered:  # its first try may have killed it: not elsewhere
                        counted = True
                        status = await self._crashed(route, meter, replica_id, head, send, e, call)
                        return status
                    if isinstance(body, StreamedBody) and body.started:
                        counted = True
                        status = await self._upload_failed(route, body, head, send, e, call)
                        return status
                    if e.stale and replica_id not in tried:
                        tried.add(replica_id)  # a closed keep-alive: try a new connection
                        continue
                    last_error = e.reason
                    meter.replica_failures += 1
                    tried.add(replica_id)
                    balancer.eject(replica_id)
                    if self._on_failure is not None:
                        self._on_failure(replica_id, e.reason)
                    replica = balancer.pick(replicas, tried)
                    if replica is not None:
                        meter.retries += 1  # the same request, sent to another replica
                    continue
                except TimeoutError:
                    counted, status = True, 504
                    if call is not None:
                        call.fail(ErrorClass.UPSTREAM_TIMEOUT)
                    await send_problem(
                        send,
                        504,
                        f"endpoint {route.name!r} did not answer within {route.timeout_s:g} s",
                        title="Upstream timeout",
                        request_id=head.request_id,
                        endpoint=route.name,
                    )
                    return 504
                except UpstreamBroken as e:
                    counted = True
                    if isinstance(body, StreamedBody) and body.started:
                        status = await self._upload_failed(route, body, head, send, e, call)
                        return status
                    status = 502
                    if call is not None:
                        call.fail(ErrorClass.BAD_UPSTREAM)
                    await send_problem(
                        send,
                        502,
                        f"endpoint {route.name!r}: bad response from a replica: {e}",
                        title="Bad gateway",
                        request_id=head.request_id,
                        endpoint=route.name,
                    )
                    return 502
                counted, status = True, resp.status
                answered, out = await self._relay(resp, head, body, receive, send, call)
                if 200 <= answered < 400:
                    meter.served(replica.revision)
                return answered
            finally:
                balancer.release(replica_id)
                if counted:
                    self._count(route.name, meter, replica_id, sent, status, body, out, call)
        if raise_unreached and not (isinstance(body, StreamedBody) and body.started):
            raise Unreached(last_error)
        if call is not None:
            call.fail(ErrorClass.NO_REPLICA)
        await send_problem(
            send,
            502,
            f"endpoint {route.name!r}: no replica could be reached ({last_error})",
            title="Bad gateway",
            request_id=head.request_id,
            endpoint=route.name,
        )
        return 502

    def _count(
        self,
        endpoint: str,
        meter: EndpointMeter,
        replica_id: str,
        sent: float,
        status: int,
        body: bytes | StreamedBody,
        out: int,
        call: Invocation | None,
    ) -> None:
        """An attempt that reached `replica_id` ended: its meter, the endpoint's bytes."""
        now = time.perf_counter()
        size = len(body) if body.__class__ is bytes else body.size  # type: ignore[union-attr]
        meter.bytes_in += size
        meter.bytes_out += out
        replica = self._meters.replicas.get(replica_id)
        if replica is None:
            replica = self._meters.replica(replica_id, endpoint)
        replica.finish(status, now - sent, size, out)
        if call is not None:
            call.upstream_end = now

    async def _crashed(
        self,
        route: EndpointRoute,
        meter: EndpointMeter,
        replica_id: str,
        head: RequestHead,
        send: Send,
        error: UpstreamDied | UpstreamFailed,
        call: Invocation | None,
    ) -> int:
        """The replica took the request and its connection ended without an answer.

        It crashed if the backend learns why its process ended; if not (it is alive and
        merely closed the connection), the 502 says just that, and it is no crash."""
        meter.replica_failures += 1
        self._balancer.eject(replica_id)
        if self._on_failure is not None:
            self._on_failure(replica_id, f"the connection ended without an answer ({error.reason})")
        why = await self._why_failed(replica_id) if self._why_failed is not None else None
        if why is None:
            if call is not None:
                call.fail(ErrorClass.REPLICA_CLOSED)
            await send_problem(
                send,
                502,
                f"endpoint {route.name!r}: {CLOSED}",
                title="Bad gateway",
                request_id=head.request_id,
                endpoint=route.name,
                replica=replica_id,
                cause="closed",
            )
            return 502
        meter.replica_crashes += 1
        if call is not None:
            call.fail(ErrorClass.REPLICA_CRASHED)
        await send_problem(
            send,
            502,
            f"endpoint {route.name!r}: {CRASHED}: {why}",
            title="Replica crashed",
            request_id=head.request_id,
            endpoint=route.name,
            replica=replica_id,
            cause=why,
        )
        return 502

    async def _relay(
        self,
        resp: UpstreamResponse,
        head: RequestHead,
        body: bytes | StreamedBody,
        receive: Receive,
        send: Send,
        call: Invocation | None,
    ) -> tuple[int, int]:
        """(the status sent, or 0: the client left; response body bytes relayed)."""
        status = resp.status
        headers = response_headers(resp.headers, head.request_id.encode("latin-1"))
        try:
            whole = resp.body_if_complete()
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if call is not None:
                call.head_sent = time.perf_counter()
                call.status_sent = status
                call.streamed = _event_stream(headers)
            if whole is not None:  # the usual small answer: it came with the head
                await send({"type": "http.response.body", "body": whole, "more_body": False})
                if call is not None:
                    if call.streamed:  # a short stream, whole by the time its head came
                        call.relayed(whole, time.perf_counter())
                    else:
                        call.bytes_out = len(whole)
                        call.answer = whole
                return status, len(whole)
            return await self._stream(resp, body, receive, send, call)
        finally:
            resp.release()

    async def _stream(
        self,
        resp: UpstreamResponse,
        body: bytes | StreamedBody,
        receive: Receive,
        send: Send,
        call: Invocation | None,
    ) -> tuple[int, int]:
        """Pass chunks on as they arrive; a client that leaves closes the upstream response."""
        gone = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        if not isinstance(body, StreamedBody) or body.done:
            # Only once the request body is consumed: receive() now only says "disconnect".
            watcher = asyncio.ensure_future(_watch_disconnect(receive, resp, gone))
        out = 0
        try:
            async for chunk in resp.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                out += len(chunk)
                if call is not None:
                    call.relayed(chunk, time.perf_counter())
                if gone.is_set():
                    resp.close()
                    if call is not None:
                        call.fail(ErrorClass.CLIENT_GONE)
                    return 0, out
        except (UpstreamBroken, OSError):
            # The client left (the watcher closed the response) or the replica broke off:
            # end without completing, so the server drops the client's connection.
            resp.close()
            if call is not None:
                call.fail(ErrorClass.CLIENT_GONE if gone.is_set() else ErrorClass.UPSTREAM_CUT)
            return (0 if gone.is_set() else resp.status), out
        finally:
            if watcher is not None:
                watcher.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return resp.status, out

    async def _upload_failed(
        self,
        route: EndpointRoute,
        body: StreamedBody,
        head: RequestHead,
        send: Send,
        error: Exception,
        call: Invocation | None,
    ) -> int:
        if body.client_gone:
            if call is not None:
                call.fail(ErrorClass.CLIENT_GONE)
            return 0
        if body.too_large:
            if call is not None:
                call.fail(ErrorClass.TOO_LARGE)
            limit = self._settings.max_body_bytes
            await send_problem(
                send,
                413,
                f"request body is larger than the limit of {limit} bytes",
                title=TooLarge.title,
                request_id=head.request_id,
                endpoint=route.name,
                limit=limit,
            )
            return 413
        if call is not None:
            call.fail(ErrorClass.REPLICA_CLOSED)
        await send_problem(
            send,
            502,
            f"endpoint {route.name!r}: the replica failed during the upload: {error}",
            title="Bad gateway",
            request_id=head.request_id,
            endpoint=route.name,
        )
        return 502


def _event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the answer is a stream of server-sent events (its content type)."""
    for name, value in headers:
        if name == _CONTENT_TYPE:
            return value[:17].lower() == _EVENT_STREAM
    return False


async def _watch_disconnect(receive: Receive, resp: UpstreamResponse, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            resp.close()  # the replica sees its client leave
            return
