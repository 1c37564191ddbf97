"""The gateway's own errors for a request the OpenAI router took are built in OpenAI's shape
directly (`OpenAIErrors` + `send_problem`), not rendered as problem+json and parsed back."""

from __future__ import annotations

import json
from typing import Any

from podium.core.problems import REFUSED_BY_GATEWAY, SAFE_HEADERS
from podium.gateway.responses import OpenAIErrors, send_problem


class Sent(list[dict[str, Any]]):
    async def __call__(self, message: Any) -> None:
        self.append(dict(message))


async def test_a_problem_sent_through_openai_errors_is_openais_body() -> None:
    sent = Sent()
    await send_problem(
        OpenAIErrors(sent),
        503,
        "endpoint 'gpt' is paused",
        title="Endpoint paused",
        request_id="r-1",
        headers=((b"retry-after", b"2"),),
        endpoint="gpt",  # a problem's extension: not part of OpenAI's body
    )
    head, body = sent
    assert head["status"] == 503
    payload = body["body"]
    assert head["headers"] == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"retry-after", b"2"),
        *SAFE_HEADERS,
        REFUSED_BY_GATEWAY,  # a 503 the gateway made: refused before any work
        (b"x-request-id", b"r-1"),
    ]
    assert body["more_body"] is False
    assert json.loads(payload) == {
        "error": {
            "message": "endpoint 'gpt' is paused",
            "type": "server_error",
            "param": None,
            "code": "endpoint_paused",
        }
    }


async def test_an_untitled_one_takes_its_code_from_the_status_title() -> None:
    sent = Sent()
    await send_problem(OpenAIErrors(sent), 404, "no such thing")
    error = json.loads(sent[1]["body"])["error"]
    assert (error["code"], error["type"]) == ("not_found", "invalid_request_error")


async def test_any_other_message_passes_through_unchanged() -> None:
    """A replica's answer (problem+json included) is forwarded as it came."""
    sent = Sent()
    send = OpenAIErrors(sent)
    start = {
        "type": "http.response.start",
        "status": 422,
        "headers": [(b"content-type", b"application/problem+json")],
    }
    chunk = {"type": "http.response.body", "body": b'{"status":422}', "more_body": False}
    await send(start)
    await send(chunk)
    assert sent == [start, chunk]
