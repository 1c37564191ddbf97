"""Request records as the API shows them (`GET /api/v1/endpoints/{name}/requests`), the
SDK reads them and the CLI prints them; and the one CSV layout of the same rows.

A record here is `core.request_record.RequestRecord` plus its `id`, the order it was
written in: pages go from the newest id down (`next_cursor`, opaque to clients, is the last
id of the page), and a follower asks for ids above the newest it has seen (`after`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class StatusClass(StrEnum):
    """The `status` filter: a class of status codes, or every failure."""

    S2XX = "2xx"
    S3XX = "3xx"
    S4XX = "4xx"
    S5XX = "5xx"
    ERROR = "error"  # status 0 (the client left), 400 or more, or an error class set


class RequestRecordPublic(BaseModel):
    """One invocation of an endpoint (see `core.request_record.RequestRecord` for each
    field). Times: `received_at` in unix seconds, durations in milliseconds. The payloads
    are present only when asked for (`include_payloads=true`) and captured."""

    model_config = ConfigDict(extra="allow")  # a field a newer server adds is kept

    id: int
    request_id: str
    endpoint: str  # the name, within `project`
    project: str
    protocol: str
    route: str
    method: str
    status: int
    error: str | None = None
    received_at: float
    latency_ms: float
    queue_ms: float = 0.0
    revision: int | None = None
    replica_id: str | None = None
    upstream_ms: float | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    streamed: bool = False
    bytes_in: int = 0
    bytes_out: int = 0
    client: str | None = None
    user_agent: str | None = None
    token_id: str | None = None
    task_id: str | None = None  # the async task this call ran (issue 13), or None
    request_body: str | None = None
    response_body: str | None = None


class RequestRecordPage(BaseModel):
    """One page, newest first (oldest first when asked with `after`); `next_cursor` asks
    for the next (older) page, None when this one is the last."""

    model_config = ConfigDict(extra="allow")

    items: list[RequestRecordPublic]
    next_cursor: str | None = None


PAYLOAD_COLUMNS: tuple[str, ...] = ("request_body", "response_body")
COLUMNS: tuple[str, ...] = tuple(
    name for name in RequestRecordPublic.model_fields if name not in PAYLOAD_COLUMNS
)
# Text a spreadsheet would run as a formula (CSV injection): such a cell gets a leading `'`.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TEXT_COLUMNS = frozenset(
    {
        "request_id",
        "route",
        "method",
        "client",
        "user_agent",
        "token_id",
        "task_id",
        *PAYLOAD_COLUMNS,
    }
)


def csv_columns(include_payloads: bool) -> tuple[str, ...]:
    """The CSV header: every field, the payloads last and only when asked for."""
    return COLUMNS + PAYLOAD_COLUMNS if include_payloads else COLUMNS


def csv_cell(column: str, value: Any) -> str:
    """One CSV cell: None is empty, booleans `true`/`false`, numbers as JSON writes them;
    a client-supplied text starting like a formula is prefixed with `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if column in _TEXT_COLUMNS and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text
