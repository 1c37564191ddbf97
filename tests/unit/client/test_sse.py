"""The SDK's reading of an event stream follows the HTML standard's rules."""

from __future__ import annotations

from podium.client._sse import Event, events


def test_events_fields_comments_and_ids() -> None:
    stream = [
        "retry: 2000",
        "",
        ": heartbeat",
        "",
        "id: 1",
        "event: line",
        'data: {"replica": "r", "line": "a"}',
        "",
        "data: first",
        "data:second",  # the space after the colon is optional
        "",
        "id: 7",
        "event: line",
        "data: x",
        "",
        "event: line",
        "data: unterminated",  # no blank line: never dispatched
    ]
    assert list(events(stream)) == [
        Event("line", '{"replica": "r", "line": "a"}', "1"),
        Event("message", "first\nsecond", "1"),  # the id carries over
        Event("line", "x", "7"),
    ]
