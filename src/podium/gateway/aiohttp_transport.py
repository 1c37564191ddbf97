"""`Transport` over one shared aiohttp session (the alternative to `http1`).

Slower per request than `http1` (see bench/gateway.py), kept as a well-trodden fallback:
`Gateway(..., transport=AiohttpTransport(settings))`.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
from yarl import URL

from podium.core.routing import ReplicaRoute
from podium.core.settings import GatewaySettings
from podium.gateway.transport import (
    WHOLE_UP_TO,
    Body,
    RawHeaders,
    Transport,
    UpstreamBroken,
    UpstreamDied,
    UpstreamFailed,
)

# No connection: the request cannot have reached the replica.
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
# The connection ended before any response byte: sent or not, as the trace tells.
_LOST_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
)
# The session adds none of these on its own: the client's own headers pass through.
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class _Response:
    __slots__ = ("_resp", "_whole", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse, whole: bytes | None = None) -> None:
        self._resp = resp
        self._whole = whole
        self.status = resp.status
        self.headers: RawHeaders = list(resp.raw_headers)

    def body_if_complete(self) -> bytes | None:
        if self._whole is not None:
            return self._whole
        content = self._resp.content
        return content.read_nowait() if content.is_eof() else None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError) as e:
            raise UpstreamBroken(str(e) or type(e).__name__) from e

    def close(self) -> None:
        self._resp.close()

    def release(self) -> None:
        self._resp.release()


class _Attempt:
    """What aiohttp's tracing told about one request (aiohttp may itself retry an
    idempotent request once on a new connection: `sent` stays true from the first try)."""

    __slots__ = ("reused", "sent")

    def __init__(self) -> None:
        self.reused = False
        self.sent = False


async def _on_reuse(_s: object, ctx: SimpleNamespace, _p: object) -> None:
    ctx.trace_request_ctx.reused = True


async def _on_create(_s: object, ctx: SimpleNamespace, _p: object) -> None:
    ctx.trace_request_ctx.reused = False


async def _on_sent(_s: object, ctx: SimpleNamespace, _p: object) -> None:
    ctx.trace_request_ctx.sent = True


def _trace() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig(trace_config_ctx_factory=SimpleNamespace)
    trace.on_connection_reuseconn.append(_on_reuse)
    trace.on_connection_create_start.append(_on_create)
    trace.on_request_headers_sent.append(_on_sent)
    return trace


class AiohttpTransport:
    def __init__(self, settings: GatewaySettings, *, keepalive_s: float = 4.0) -> None:
        self._settings = settings
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._settings.connect_timeout_s)
        connector = aiohttp.TCPConnector(
            limit=0, keepalive_timeout=self._keepalive_s, use_dns_cache=False
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            timeout=timeout,
            trust_env=False,
            trace_configs=[_trace()],
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def request(
        self,
        replica: ReplicaRoute,
        method: str,
        target: str,
        headers: RawHeaders,
        body: Body | None,
        content_length: int | None,
    ) -> _Response:
        if self._session is None:
            await self.start()
        assert self._session is not None
        str_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
        data: Any = body
        if isinstance(body, bytes | None):
            if not body and content_length is None:
                data = None
        elif content_length is not None:
            str_headers.append(("content-length", str(content_length)))
        url = URL(f"http://{replica.host}:{replica.port}{target}", encoded=True)
        attempt = _Attempt()
        try:
            resp = await self._session.request(
                method,
                url,
                headers=str_headers,
                data=data,
                allow_redirects=False,
                trace_request_ctx=attempt,
            )
        except _CONNECT_ERRORS as e:
            if attempt.sent:  # aiohttp's own retry after the request went out: it died
                raise UpstreamDied(f"{type(e).__name__}: {e}") from e
            raise UpstreamFailed(f"{type(e).__name__}: {e}") from e
        except _LOST_ERRORS as e:
            reason = f"{type(e).__name__}: {e}"
            reset = getattr(e, "errno", None) == errno.ECONNRESET or isinstance(
                e.__cause__, ConnectionResetError
            )  # the replica never read the request
            if attempt.sent and not reset:
                raise UpstreamDied(reason, stale=attempt.reused) from e
            raise UpstreamFailed(reason, stale=attempt.reused) from e
        except (aiohttp.ClientError, OSError) as e:
            raise UpstreamBroken(f"{type(e).__name__}: {e}") from e
        length = resp.content_length
        if length is None or not 0 < length <= WHOLE_UP_TO or method == "HEAD":
            return _Response(resp)
        try:  # a small answer is collected whole (see transport.py)
            return _Response(resp, await resp.read())
        except (aiohttp.ClientError, OSError) as e:
            resp.close()
            raise UpstreamDied(f"the connection ended in the middle of the answer: {e}") from e
        except BaseException:
            resp.close()
            raise


def _as_transport(transport: AiohttpTransport) -> Transport:  # mypy: it is a Transport
    return transport
