"""Task callbacks (issue 13): which URLs a callback may go to, and how it is signed.

**Allow-list.** A callback URL is accepted only if it is `http` or `https`, carries no user
info, and its host is on the server's allow-list (`TaskSettings.callback_hosts`,
`PODIUM_CALLBACK_HOSTS`): a host name listed as is (case-insensitive, exact), or an IP
address inside a listed address or CIDR block; an entry with a port (`127.0.0.1:9000`,
`hooks.example.com:443`, `[::1]:9000`) allows that port only, one without allows every
port of the host. A listed name is trusted as the operator's: its address is not
checked again when it resolves. An empty list allows nothing: Podium sends
no request to an address the operator did not name. The check runs when a task is created
(400 naming `X-Podium-Callback-Url`) and again before every delivery (the list may have
changed); redirects are never followed.

**Signature.** `X-Podium-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
`f"{t}.".encode() + body` with the endpoint's callback key (as Stripe signs webhooks). A
receiver recomputes it, compares in constant time, and refuses a `t` older than its
tolerance (`verify`, 300 s by default), so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from podium.core.tasks import MAX_CALLBACK_URL

SIGNATURE_HEADER = "X-Podium-Signature"
DEFAULT_TOLERANCE_S = 300.0


def callback_refusal(url: str, hosts: Sequence[str]) -> str | None:
    """Why `url` may not receive callbacks on a server allowing `hosts`, or None."""
    if len(url) > MAX_CALLBACK_URL:
        return f"a callback URL has at most {MAX_CALLBACK_URL} characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number
    except ValueError as e:
        return f"not a valid URL: {e}"
    if parts.scheme not in ("http", "https"):
        return "a callback URL must be http:// or https://"
    if parts.username is not None or parts.password is not None:
        return "a callback URL may not carry a user name or password"
    host = (parts.hostname or "").lower()
    if not host:
        return "a callback URL needs a host"
    if not hosts:
        return (
            "callbacks are off on this server: the operator allows no callback host "
            "(PODIUM_CALLBACK_HOSTS)"
        )
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if _allowed(host, port, hosts):
        return None
    return (
        f"host {host!r} port {port} is not on this server's callback allow-list "
        "(PODIUM_CALLBACK_HOSTS)"
    )


def _entry(raw: str) -> tuple[str, int | None]:
    """An allow-list entry as (host, port): `host`, `host:port`, `[v6]:port`, an IP, a CIDR
    block. Without a port, any port of the host is allowed."""
    entry = raw.strip().lower()
    if entry.startswith("[") and "]" in entry:
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


def _allowed(host: str, port: int, hosts: Sequence[str]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in hosts:
        entry, allowed_port = _entry(raw)
        if allowed_port is not None and allowed_port != port:
            continue
        if address is None:
            if host == entry:
                return True
            continue
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name entry: an IP literal never matches it
    return False


def sign(key: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Podium-Signature` value for `body` at `timestamp` (default: now)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(
    key: bytes,
    body: bytes,
    header: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether `header` signs `body` with `key`, made at most `tolerance_s` ago (a
    receiver's check; the SDK exports it)."""
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        return False
    expected = sign(key, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)
