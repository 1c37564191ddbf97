"""Header rewriting between the client and a replica (one pass over each list).

Requests lose hop-by-hop headers and `host`, gain a request id and `x-forwarded-*`, and
never carry a Podium credential upstream: an `Authorization` header holding a Podium token
(`pod_…`) is kept aside in the `RequestHead` (for the access stage) and not forwarded, and
the `podium_session` and `podium_csrf` pairs are cut out of each `Cookie` header (the whole
header is kept aside for the stage); a replica runs user code. Other `Authorization`
schemes and the other cookies pass through.
Responses lose hop-by-hop headers, `date` and `server`, and carry the request id back.

A request without an `X-Request-ID` (or with one over 128 bytes) gets one made here: 24 hex
digits, the milliseconds since the epoch (12) then 48 random bits (12). Time first, so ids
sort by when they were made and the store's index on request records' `request_id` grows
at its end: random ids made each insert land on a random index page, which doubled the
record writer's cost per row at 200,000 rows (14 against 7 µs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from os import urandom
from time import time_ns

from podium.core.access import CSRF_COOKIE, SESSION_COOKIE, TOKEN_PREFIX
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
    b"cookie",  # forwarded without Podium's own cookies
    b"x-csrf-token",  # kept for the access stage, forwarded
}
_TOKEN_MARK = TOKEN_PREFIX.encode()
_PODIUM_COOKIES = frozenset({SESSION_COOKIE.encode(), CSRF_COOKIE.encode()})
_COOKIE_MARK = b"podium_"  # both names hold it: a header without it is forwarded as is
_REQUEST_ID_B = b"x-request-id"
# A client's `X-Request-ID` is kept only as 1-128 printable ASCII characters (no spaces,
# no control bytes): it goes into records, CSV downloads and log lines.
_GOOD_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}").fullmatch
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
            kept = _without_podium_cookies(value) if _COOKIE_MARK in value else value
            if kept:
                out.append((name, kept))
        elif name == b"x-csrf-token":
            csrf = value
            out.append((name, value))
    if extra_hop:
        out = [(n, v) for n, v in out if n not in extra_hop]
    if not request_id or not _GOOD_REQUEST_ID(request_id):
        request_id = new_request_id()  # none, or not 1-128 printable ASCII characters
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


def new_request_id() -> bytes:
    """A fresh request id: milliseconds since the epoch, then 48 random bits (module doc)."""
    return ((time_ns() // 1_000_000).to_bytes(6, "big") + urandom(6)).hex().encode()


def _without_podium_cookies(value: bytes) -> bytes:
    """A Cookie header's value without the `podium_session` and `podium_csrf` pairs."""
    kept = [
        pair
        for pair in value.split(b";")
        if pair.strip() and pair.partition(b"=")[0].strip() not in _PODIUM_COOKIES
    ]
    return b";".join(kept).strip()


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
