"""Server-Sent Events frames (the `text/event-stream` format of the HTML standard).

A frame is a few `field: value` lines and a blank line. `data` here is always one JSON
document on one line (JSON escapes newlines), so a frame never needs several `data:`
lines; `id:` numbers the events, so a client that reconnects sends `Last-Event-ID` and the
stream can go on from there; a line starting with `:` is a comment, which clients ignore
(a heartbeat that keeps proxies from closing an idle stream).
"""

from __future__ import annotations

import json
from typing import Any

MEDIA_TYPE = "text/event-stream"
LINE = "line"  # the event of one log line: {"replica": id, "line": text}
# Headers of a stream: never cached, never buffered by a proxy (nginx reads the latter).
HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def event(name: str, data: Any, event_id: int) -> str:
    """One event: its id, its name and its data as one JSON line."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {name}\ndata: {payload}\n\n"


def comment(text: str) -> str:
    """A comment frame (clients ignore it): `text` must not contain a newline."""
    return f": {text}\n\n"


def retry(milliseconds: int) -> str:
    """How long a client waits before it reconnects."""
    return f"retry: {milliseconds}\n\n"


def wants_events(accept: str | None) -> bool:
    """Does an `Accept` header ask for an event stream?"""
    if not accept:
        return False
    return any(part.split(";")[0].strip().lower() == MEDIA_TYPE for part in accept.split(","))
