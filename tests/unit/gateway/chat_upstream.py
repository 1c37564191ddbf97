"""A stand-in replica that speaks like an LLM server, for the request record tests.

POST …/chat/completions  `{"stream": false}`: a JSON answer with OpenAI `usage`
                         (prompt_tokens 7, completion_tokens 3);
                         `{"stream": true}`: server-sent events: `FIRST` events with a
                         token each, then (with `"hold": true`) waits for `release()` or
                         the client leaving, then two more, a `usage` event
                         (completion_tokens 5) and `data: [DONE]`
…/status/{code}          answers `{code}` with a small JSON body
anything else            `{"echo": <the request body as JSON>}` (or its text)
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

FIRST = 3
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
STREAM_USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


def event(doc: object) -> bytes:
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def token(text: str) -> bytes:
    return event({"object": "chat.completion.chunk", "choices": [{"delta": {"content": text}}]})


class ChatUpstream:
    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        self.holding = threading.Event()  # a held stream sent its first events
        self.disconnected = threading.Event()  # a held stream saw its client leave
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None

    def release(self) -> None:
        if self._loop is not None and self._release is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release.set)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self._release is None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        path: str = scope["path"]
        if path.endswith("/chat/completions"):
            doc = json.loads(body)
            if doc.get("stream"):
                await self._stream(send, receive, bool(doc.get("hold")))
                return
            answer = {"object": "chat.completion", "choices": [], "usage": USAGE}
            await _json(send, 200, answer)
            return
        if "/status/" in path:
            code = int(path.rsplit("/", 1)[1])
            await _json(send, code, {"error": f"status {code}"})
            return
        try:
            echoed: object = json.loads(body)
        except ValueError:
            echoed = body.decode("latin-1")
        await _json(send, 200, {"echo": echoed, "server": self.server_id})

    async def _stream(self, send: Any, receive: Any, hold: bool) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(FIRST):
            await send({"type": "http.response.body", "body": token(f"t{i}"), "more_body": True})
        if hold:
            assert self._release is not None
            self.holding.set()
            released = asyncio.ensure_future(self._release.wait())
            left = asyncio.ensure_future(receive())
            done, pending = await asyncio.wait(
                {released, left}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if left in done:
                self.disconnected.set()
                return
        # The last events in one chunk, split in the middle of an event (a chunk boundary
        # never lines up with events on a real network).
        rest = token("t3") + token("t4") + event({"choices": [], "usage": STREAM_USAGE})
        rest += b"data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": rest[:10], "more_body": True})
        await send({"type": "http.response.body", "body": rest[10:], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _json(send: Any, status: int, doc: object) -> None:
    payload = json.dumps(doc).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})
