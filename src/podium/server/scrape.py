"""Who may scrape the server's `/metrics`.

Its labels name every project's endpoints (their keys), so with auth on it needs a token
with `read` on every project (`projects` null; an admin of every project qualifies), sent as
`Authorization: Bearer <token>`: none or a bad one is 401 (with `WWW-Authenticate`), a token
bound to projects or without `read` is 403, both `application/problem+json`. With auth off
(`podium up --no-auth`, loopback only) it is open.
"""

from __future__ import annotations

from collections.abc import Iterable

from podium.core.access import AuthFailure, Scope, TokenDirectory, bearer
from podium.core.problems import PROBLEM, problem_body

Refusal = tuple[int, list[tuple[bytes, bytes]], bytes]
_CHALLENGE = (b"www-authenticate", b'Bearer realm="podium"')


def scrape_refusal(
    directory: TokenDirectory, headers: Iterable[tuple[bytes, bytes]]
) -> Refusal | None:
    """None when the request's token may read `/metrics`, else the answer: status, headers
    and a problem body."""
    authorization = next((v for n, v in headers if n == b"authorization"), None)
    token = bearer(authorization.decode("latin-1")) if authorization is not None else None
    who = directory.authenticate(token)
    if isinstance(who, AuthFailure):
        body = problem_body(401, f"/metrics needs a token with scope 'read': {who.value}")
        return 401, _head(body, _CHALLENGE), body
    if not who.may(Scope.READ) or who.projects is not None:
        body = problem_body(
            403,
            f"token {who.name!r} ({who.token_id}) lacks scope 'read' on every project "
            "(/metrics shows every project's endpoints)",
            scope="read",
        )
        return 403, _head(body), body
    return None


def _head(body: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", PROBLEM), (b"content-length", str(len(body)).encode()), *extra]
