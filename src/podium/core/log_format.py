"""How a Podium log line looks: text (the default) or JSON lines, with the request id.

The server and every replica format their logs with these two formatters, so a line a
request causes names that request the same way on both sides of the gateway:

    text  2026-12-05 01:16:51,123 INFO podium.replica [req=4f1c2a9be0d3a1f2]: predicting
    json  {"ts": "2026-12-05T01:16:51.123Z", "level": "INFO", "logger": "podium.replica",
           "message": "predicting", "request_id": "4f1c2a9be0d3a1f2"}

(one line each; the JSON line is broken here only to fit). The request id comes from
`log_context` (`RequestIdFilter` sets `record.request_id`; "-" outside a request): the
text format shows ` [req=…]` only while a request is served, the JSON format always has
the key (null outside a request). Standard library only (`logging`, `json`): the replica
imports this before anything else, and two small formatters need no dependency.

`log_handler(json_lines, stream)` is the one handler both processes install on the root
logger; `wants_json(value)` reads `PODIUM_LOG_FORMAT` leniently (a replica never fails
over its log format; the server's settings refuse a bad value with a named field).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import IO, Any

from podium.core.log_context import RequestIdFilter

ENV_LOG_FORMAT = "PODIUM_LOG_FORMAT"  # "text" (default) or "json"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
NO_REQUEST = "-"  # `log_context`'s value outside a request


def _request_id(record: logging.LogRecord) -> str | None:
    value = getattr(record, "request_id", NO_REQUEST)
    return None if value in (NO_REQUEST, None, "") else str(value)


class TextFormatter(logging.Formatter):
    """`asctime level logger [req=ID]: message`, the request tag only within a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        request_id = _request_id(record)
        record.request_tag = f" [req={request_id}]" if request_id is not None else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC, milliseconds), level, logger, message,
    request_id (null outside a request), and exception / stack text when the record has
    them. Non-ASCII stays as is; a newline in a message is escaped, so a line is a record."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        doc: dict[str, Any] = {
            "ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def wants_json(value: str | None) -> bool:
    """True when `PODIUM_LOG_FORMAT` says json (any case); anything else is text."""
    return value is not None and value.strip().lower() == "json"


def log_handler(json_lines: bool, stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler (stderr by default) that formats as asked and tags every record
    with the request being served."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    return handler


def install(handler: logging.Handler, level: int = logging.INFO) -> None:
    """Make `handler` the root logger's only handler (a second call replaces the first's:
    a zygote's forked child installs its own over what the zygote had)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
