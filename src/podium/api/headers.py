"""Security headers on every answer of the control API (pure ASGI middleware).

    X-Content-Type-Options: nosniff     a JSON answer is never run as a script
    X-Frame-Options: DENY               no page of Podium inside another site's frame
    Referrer-Policy: no-referrer
    Content-Security-Policy             nothing may load (`default-src 'none'`), except on
                                        the docs page: Swagger UI's own files, its inline
                                        start-up script and styles, the OpenAPI document

No CORS headers are ever sent: a page of another origin cannot read the API's answers,
and a preflight from one gets no `Access-Control-Allow-Origin`.
"""

from __future__ import annotations

from podium.core.asgi import ASGIApp, Message, Receive, Scope, Send

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_OURS = frozenset(name for name, _ in _FIXED) | {b"content-security-policy"}


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in self.docs_paths else STRICT_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers") or () if k.lower() not in _OURS
                ]
                headers.extend(_FIXED)
                headers.append((b"content-security-policy", csp.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
