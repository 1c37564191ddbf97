"""Security headers on every answer of the control API (pure ASGI middleware).

    X-Content-Type-Options: nosniff     a JSON answer is never run as a script
    X-Frame-Options: DENY               no page of Podium inside another site's frame
    Referrer-Policy: no-referrer
    Content-Security-Policy             nothing may load (`default-src 'none'`), except on
                                        the docs pages: Swagger UI's own files, the page's
                                        inline start-up script by its SHA-256 (no other
                                        inline script runs), styles, the OpenAPI document

No CORS headers are ever sent: a page of another origin cannot read the API's answers,
and a preflight from one gets no `Access-Control-Allow-Origin`.
"""

from __future__ import annotations

import base64
import hashlib
import re

from podium.core.asgi import ASGIApp, Message, Receive, Scope, Send
from podium.core.problems import SAFE_HEADERS

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
# Podium's own safe headers (core/problems.py), with a policy of the API's own.
_FIXED = tuple(h for h in SAFE_HEADERS if h[0] != b"content-security-policy")
_OURS = frozenset(name for name, _ in _FIXED) | {b"content-security-policy"}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_csp(page: bytes) -> str:
    """The docs page's policy: its own inline scripts allowed by hash, nothing else."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return DOCS_CSP.format(hashes=hashes)


def _with_headers(message: Message, csp: str) -> Message:
    headers = [(k, v) for k, v in message.get("headers") or () if k.lower() not in _OURS]
    headers.extend(_FIXED)
    headers.append((b"content-security-policy", csp.encode()))
    message["headers"] = headers
    return message


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.docs_paths:
            await self._docs_page(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _with_headers(message, STRICT_CSP)
            await send(message)

        await self.app(scope, receive, sending)

    async def _docs_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A small HTML page: held whole, so its policy can name its scripts' hashes."""
        head: Message | None = None
        body = bytearray()

        async def sending(message: Message) -> None:
            nonlocal head
            if message["type"] == "http.response.start":
                head = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            if head is not None:
                await send(_with_headers(head, docs_csp(bytes(body))))
            await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, sending)
