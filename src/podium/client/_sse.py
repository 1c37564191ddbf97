"""Reading a Server-Sent Events stream (`text/event-stream`), by the HTML standard's rules.

Lines `field: value` build an event; a blank line ends it; a line starting with `:` is a
comment (the server's heartbeats); `data` lines join with newlines; `id` is remembered
across events (a reconnect sends it as `Last-Event-ID`). Only what the SDK needs: no
reconnection here (`ObserveMethods.follow_logs` decides that).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MEDIA_TYPE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class Event:
    name: str  # "message" when the event named none
    data: str
    id: str | None  # the last id the stream set (None: none yet)


def events(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a stream given as lines without their line ends."""
    name, last_id = "", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Event(name or "message", "\n".join(data), last_id)
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id" and "\0" not in value:
            last_id = value
