"""The Host header check (DNS rebinding): the server answers only the names it is known by.

A web page on another site can make a browser send requests to `127.0.0.1:8000` by having
its own name resolve there (DNS rebinding); the browser then sends that site's name in
`Host`. Refusing every Host that is not one of the server's names stops it, for every path
(API, gateway, metrics), before anything else runs.

Allowed: the loopback names (`localhost`, `127.0.0.1`, `[::1]`), `settings.host` when it is
a concrete address (not `0.0.0.0` / `::`), and `settings.server_names` (PODIUM_SERVER_NAMES).
The port is ignored; an IPv6 literal is written in brackets, as in a Host header. The set is
computed once, when the server starts; a check is a header scan and a set lookup.
"""

from __future__ import annotations

import ipaddress

from podium.core.errors import Invalid
from podium.core.problems import PROBLEM, problem_body
from podium.core.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})
TITLE = "Misdirected Request"
STATUS = 421
PASSED_CACHE = 64


def host_name(value: str) -> str:
    """The name part of a Host header value or a configured name, as compared: lower case,
    without the port and a trailing dot, an IPv6 literal in brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    if value.count(":") > 1:  # a bare IPv6 literal (a configured name, never a header)
        return f"[{value}]"
    return value.partition(":")[0].rstrip(".")


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the server to this machine (`--no-auth` needs it)."""
    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_no_auth(settings: Settings) -> None:
    """`Invalid` when auth is off on a host other machines can reach (the one check, for
    `server.main.serve` and the CLI's `podium up`)."""
    if not settings.auth and not is_loopback(settings.host):
        raise Invalid(
            f"--no-auth needs a loopback --host (127.0.0.1, ::1 or localhost), not {settings.host}",
            field="--no-auth",
        )


def allowed_hosts(settings: Settings) -> frozenset[str]:
    names = set(LOOPBACK_NAMES)
    if settings.host not in _ANY_ADDRESS:
        names.add(host_name(settings.host))
    names.update(host_name(n) for n in settings.server_names if n.strip())
    return frozenset(names)


class HostCheck:
    """Says which requests come with a Host this server does not answer to."""

    __slots__ = ("_passed", "allowed")

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed
        # Host values seen and allowed, as sent (`127.0.0.1:8000`): a set lookup, no parsing,
        # for nearly every request. Bounded, so varied ports cannot grow it without end.
        self._passed: set[bytes] = set()

    def refused(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The Host of a request to refuse, or None to let it through. A request with no
        Host (HTTP/1.0; HTTP/1.1 requires one) goes through: a browser always sends it."""
        for key, value in headers:
            if key == b"host":
                if value in self._passed:
                    return None
                raw = value.decode("latin-1")
                if host_name(raw) not in self.allowed:
                    return raw
                if len(self._passed) < PASSED_CACHE:
                    self._passed.add(value)
                return None
        return None

    @staticmethod
    def answer(host: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The 421 problem for a refused Host: status, headers, body."""
        shown = host if len(host) <= 200 else host[:200] + "…"
        body = problem_body(
            STATUS,
            f"this server does not answer to host {shown!r}; add the name to "
            "PODIUM_SERVER_NAMES if it is one of this server's",
            title=TITLE,
            field="host",
        )
        headers = [(b"content-type", PROBLEM), (b"content-length", str(len(body)).encode())]
        return STATUS, headers, body
