"""`BodyLimit`: the control API's request body limit, as pure ASGI middleware.

Every body is limited before FastAPI reads it (FastAPI holds a JSON body in memory):
model uploads (`POST …/models/{name}/versions`, streamed to disk) by `max_upload_bytes`,
everything else by `max_json_bytes`. A declared `content-length` over the limit is answered
at once; a body without one (chunked) is counted as it arrives, and the first byte over the
limit ends the request. Either way the answer is a 413 problem naming the limit, with
`connection: close` (the rest of the body is not read).
"""

from __future__ import annotations

import re

from podium.core.asgi import ASGIApp, Message, Receive, Scope, Send, send_whole
from podium.core.errors import TooLarge
from podium.core.problems import PROBLEM, problem_body

_UPLOAD = re.compile(r"^/api/v1/models/[^/]+/versions/?$")
# Job inputs (issue 13): multipart, spooled by the form parser before the file store
# bounds them, so the body itself is held to the file limit (plus the form's framing).
_FILES = re.compile(r"^(/api/v1|/v1)/files/?$")
MULTIPART_SLACK = 64 * 1024


class _Exceeded(Exception):
    """Raised into the app by `receive` once the body passes the limit."""


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_json_bytes: int,
        max_upload_bytes: int,
        max_file_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes
        self.max_file_bytes = max_upload_bytes if max_file_bytes is None else max_file_bytes

    def limit_for(self, scope: Scope) -> tuple[int, str]:
        """(bytes, setting) for this request."""
        if scope.get("method") == "POST" and _UPLOAD.match(scope.get("path", "")):
            return self.max_upload_bytes, "PODIUM_MAX_UPLOAD_BYTES"
        if scope.get("method") == "POST" and _FILES.match(scope.get("path", "")):
            return self.max_file_bytes + MULTIPART_SLACK, "PODIUM_MAX_FILE_BYTES"
        return self.max_json_bytes, "PODIUM_API_MAX_JSON_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            detail = f"the request body is {declared} bytes; the limit is {limit} ({setting})"
            await _too_large(send, detail, limit)
            return
        seen = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                raise _Exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _Exceeded
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app answers to the aborted body, the 413 is ours
            started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _Exceeded:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            detail = f"the request body is larger than the limit of {limit} bytes ({setting})"
            await _too_large(send, detail, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length itself
    return None


async def _too_large(send: Send, detail: str, limit: int) -> None:
    body = problem_body(TooLarge.status, detail, title=TooLarge.title, field="body", limit=limit)
    await send_whole(send, TooLarge.status, PROBLEM, body, ((b"connection", b"close"),))
