"""The request a log line belongs to: a context variable that log handlers read.

The gateway's pipeline (and a replica's dispatch, from the `X-Request-ID` header) call
`bind_request(request_id)` at the start of each request; everything logged while serving it,
in that task and the tasks it starts, carries it: `RequestIdFilter` sets `record.request_id`
("-" outside any request) for the text and JSON formats alike.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

_REQUEST_ID: ContextVar[str] = ContextVar("podium_request_id", default="-")


def bind_request(request_id: str) -> None:
    """Log lines from here on, in this task and those it starts, name `request_id`."""
    _REQUEST_ID.set(request_id)


def current_request() -> str:
    """The request being served ("-" when none)."""
    return _REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (attach to a handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _REQUEST_ID.get()
        return True
