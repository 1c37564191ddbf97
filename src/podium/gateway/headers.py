"""Header rewriting between the client and a replica (one pass over each list).

Requests lose hop-by-hop headers and `host`, gain a request id and `x-forwarded-*`, and
never carry a Podium credential upstream: an `Authorization` header holding a Podium token
(`pod_…`) and a `Cookie` header holding the session cookie are kept aside in the
`RequestHead` (for the access stage) and not forwarded; a replica runs user code. Other
`Authorization` schemes and cookies pass through.
Responses lose hop-by-hop headers, `date` and `server`, and carry the request id back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from podium.core.access import TOKEN_PREFIX
from podium.gateway.responses import Scope

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
    }
)
# Request headers the gateway sets itself.
_REPLACED: frozenset[bytes] = HOP_BY_HOP | {
    b"host",
    b"x-request-id",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"content-length",
    b"expect",  # the gateway sends the body at once; a replica's 100 Continue is skipped
    b"authorization",  # forwarded unless it holds a Podium token
    b"cookie",  # forwarded unless it holds the session cookie
    b"x-csrf-token",  # kept for the access stage, forwarded
}
_TOKEN_MARK = TOKEN_PREFIX.encode()
SESSION_COOKIE = "podium_session"
_SESSION_MARK = f"{SESSION_COOKIE}=".encode()
_REQUEST_ID_B = b"x-request-id"
# Response headers the gateway's own server writes (as nginx does, the replica's are dropped
# rather than sent twice), and the request id, set once by the gateway.
_RESPONSE_DROPPED: frozenset[bytes] = HOP_BY_HOP | {b"date", b"server", _REQUEST_ID_B}


@dataclass(slots=True)
class RequestHead:
    """What the proxy sends upstream, and what the gateway needs to know about the body."""

    headers: RawHeaders
    request_id: str
    content_length: int | None  # None: no (valid) content-length, the body is chunked or empty
    # The client's credentials, for the access stage (the first two are not forwarded when
    # they hold a Podium token; see the module docstring).
    authorization: bytes | None = None
    cookie: bytes | None = None  # every Cookie header, joined with "; "
    csrf: bytes | None = None  # X-CSRF-Token


def request_head(scope: Scope) -> RequestHead:
    """Headers for the upstream request, built from the ASGI scope."""
    out: RawHeaders = []
    request_id = host = forwarded_for = b""
    content_length: int | None = None
    authorization: bytes | None = None
    cookie: bytes | None = None
    csrf: bytes | None = None
    extra_hop: frozenset[bytes] = frozenset()
    raw: RawHeaders = scope["headers"]
    for name, value in raw:
        if name not in _REPLACED:
            if name.startswith(b"proxy-"):
                continue
            out.append((name, value))
        elif name == _REQUEST_ID_B:
            request_id = value
        elif name == b"host":
            host = value
        elif name == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                content_length = None
        elif name == b"x-forwarded-for":
            forwarded_for = value
        elif name == b"connection":
            extra_hop = _connection_tokens(value)
        elif name == b"authorization":
            authorization = value
            if _TOKEN_MARK not in value:
                out.append((name, value))
        elif name == b"cookie":
            cookie = value if cookie is None else cookie + b"; " + value
            if _SESSION_MARK not in value:
                out.append((name, value))
        elif name == b"x-csrf-token":
            csrf = value
            out.append((name, value))
    if extra_hop:
        out = [(n, v) for n, v in out if n not in extra_hop]
    if not request_id or len(request_id) > 128:
        request_id = secrets.token_hex(8).encode()
    client = scope.get("client")
    if client:
        peer = client[0].encode("latin-1")
        forwarded_for = forwarded_for + b", " + peer if forwarded_for else peer
    out.append((_REQUEST_ID_B, request_id))
    if forwarded_for:
        out.append((b"x-forwarded-for", forwarded_for))
    if host:
        out.append((b"x-forwarded-host", host))
    out.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
    return RequestHead(
        out, request_id.decode("latin-1"), content_length, authorization, cookie, csrf
    )


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    """Header names listed in `Connection` (they are hop-by-hop too)."""
    tokens = {t.strip().lower() for t in value.split(b",")}
    return frozenset(tokens - {b"", b"close", b"keep-alive"})


def response_headers(raw: Iterable[tuple[bytes, bytes]], request_id: bytes) -> RawHeaders:
    """Upstream response headers for the client, with the request id."""
    out: RawHeaders = []
    for name, value in raw:
        lower = name.lower()
        if lower in _RESPONSE_DROPPED:
            continue
        out.append((lower, value))
    out.append((_REQUEST_ID_B, request_id))
    return out
