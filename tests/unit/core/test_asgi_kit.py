"""The ASGI kit (`core/asgi.py`) that the gateway, the replica, the API's middleware and the
server share: driven message by message, as a server would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from podium.core.asgi import (
    ClientGone,
    Message,
    read_body,
    send_whole,
    serve_lifespan,
    wait_disconnect,
)


def messages(*items: Message) -> Callable[[], Awaitable[Message]]:
    queue = list(items)

    async def receive() -> Message:
        return queue.pop(0)

    return receive


class Sent(list[Message]):
    async def __call__(self, message: Message) -> None:
        self.append(dict(message))


async def test_lifespan_starts_then_stops_and_reports_each() -> None:
    calls: list[str] = []

    async def startup() -> None:
        calls.append("startup")

    async def shutdown() -> None:
        calls.append("shutdown")

    sent = Sent()
    receive = messages({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    await serve_lifespan(receive, sent, startup, shutdown)
    assert calls == ["startup", "shutdown"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_a_failed_startup_is_reported_and_nothing_is_stopped() -> None:
    async def startup() -> None:
        raise RuntimeError("the port is taken")

    async def shutdown() -> None:
        raise AssertionError("not started, so not stopped")

    sent = Sent()
    await serve_lifespan(messages({"type": "lifespan.startup"}), sent, startup, shutdown)
    assert sent == [{"type": "lifespan.startup.failed", "message": "the port is taken"}]


async def test_read_body_joins_the_chunks() -> None:
    receive = messages(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"c"},
    )
    assert await read_body(receive) == b"abc"


async def test_a_client_gone_before_the_end_of_its_body_is_client_gone() -> None:
    receive = messages(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.disconnect"},
    )
    with pytest.raises(ClientGone):
        await read_body(receive)


async def test_wait_disconnect_returns_only_on_disconnect() -> None:
    seen: list[str] = []
    items: list[Message] = [{"type": "http.request", "body": b""}, {"type": "http.disconnect"}]

    async def receive() -> Message:
        message = items.pop(0)
        seen.append(message["type"])
        return message

    await wait_disconnect(receive)
    assert seen == ["http.request", "http.disconnect"]


async def test_send_whole_sends_one_head_and_one_whole_body() -> None:
    sent = Sent()
    await send_whole(sent, 418, b"text/plain", b"tea", [(b"x-a", b"1")])
    head: dict[str, Any] = sent[0]
    assert head == {
        "type": "http.response.start",
        "status": 418,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3"), (b"x-a", b"1")],
    }
    assert sent[1] == {"type": "http.response.body", "body": b"tea", "more_body": False}
    assert len(sent) == 2
