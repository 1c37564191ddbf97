"""An endpoint's request records: `GET /endpoints/{name}/requests`, as JSON pages or CSV.

JSON: `{items, next_cursor}`, newest first, at most 1000 a page; `cursor=<next_cursor>`
asks for the next (older) page; `after=<id>` for the records newer than an id, oldest
first (what `podium requests --follow` polls with). CSV (`format=csv`, or
`Accept: text/csv` without `format`): a header row and the same rows under the same
filters, newest first, streamed from the store a page at a time, at most `limit` rows
(default `CSV_DEFAULT_ROWS`, at most `CSV_MAX_ROWS`). The payload columns (request and
response bodies, when captured) are sent only with `include_payloads=true`: they may be
large.

Records outlive their endpoint until pruned, but only those received since the current
endpoint was created are shown: a re-created endpoint of the same name starts empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from podium.api.access import needs
from podium.api.deps import ApiContext, CtxDep, get_caller
from podium.api.problems import responses
from podium.api.routes.params import ProjectDep, key_of, unix_time
from podium.core.access import Scope, split_key
from podium.core.errors import Forbidden, Invalid
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.record_schemas import (
    PAYLOAD_COLUMNS,
    RequestRecordPage,
    StatusClass,
    csv_cell,
    csv_columns,
)
from podium.store.requests import RecordFilter, StoredRecord

router = APIRouter(prefix="/endpoints", tags=["endpoints"], responses=responses(403, 422))

JSON_MAX_ROWS = 1000  # a JSON page
CSV_DEFAULT_ROWS = 10_000
CSV_MAX_ROWS = 100_000  # one CSV download; page with since/until for more
JSON_DEFAULT_ROWS = 100
_CSV_PAGE = 1000  # rows read from the store per unit of work while a CSV streams
_CURSOR_RE = r"^[0-9]{1,19}$"

EndpointName = Annotated[
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]
_TIME = "unix seconds or ISO 8601 (UTC when no offset is given)"


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


_CSV = {
    "description": "with format=csv or Accept: text/csv: a header row, then the records",
    "content": {"text/csv": {"schema": {"type": "string"}}},
}


@router.get(
    "/{name}/requests",
    response_model=RequestRecordPage,
    responses={**responses(404), 200: _CSV},
    dependencies=[needs(Scope.READ)],
)
def list_requests(
    request: Request,
    name: EndpointName,
    project: ProjectDep,
    ctx: CtxDep,
    status: Annotated[StatusClass | None, Query(description="a status class, or error")] = None,
    min_latency_ms: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    since: Annotated[str | None, Query(max_length=40, description=_TIME)] = None,
    until: Annotated[str | None, Query(max_length=40, description=_TIME)] = None,
    replica: Annotated[str | None, Query(max_length=128)] = None,
    revision: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    request_id: Annotated[str | None, Query(max_length=128)] = None,
    task_id: Annotated[
        str | None, Query(max_length=64, description="the calls that ran this async task")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(max_length=19, pattern=_CURSOR_RE, description="next_cursor of the last page"),
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="records with a larger id, oldest first")
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=CSV_MAX_ROWS,
            description=f"JSON: 1-{JSON_MAX_ROWS} (default {JSON_DEFAULT_ROWS}); "
            f"CSV: 1-{CSV_MAX_ROWS} (default {CSV_DEFAULT_ROWS})",
        ),
    ] = None,
    format: Annotated[Format | None, Query(description="json (default) or csv")] = None,
    include_payloads: Annotated[bool, Query(description="the captured bodies too")] = False,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    """The endpoint's request records, newest first, filtered; JSON pages or CSV.

    The captured bodies (`include_payloads=true`) are the most sensitive data Podium keeps
    (prompts, answers): they need `deploy` on the project, not only `read`."""
    if include_payloads and not get_caller(request, ctx).may(Scope.DEPLOY, project):
        raise Forbidden(
            "include_payloads needs a token with scope 'deploy' on project "
            f"{project!r}: captured bodies are not shown to readers",
            field="include_payloads",
        )
    filters = RecordFilter(
        status=status,
        min_latency_ms=min_latency_ms,
        since=unix_time(since, "since"),
        until=unix_time(until, "until"),
        replica=replica,
        revision=revision,
        request_id=request_id,
        task_id=task_id,
    )
    before = None if cursor is None else int(cursor)
    if before is not None and after is not None:
        raise Invalid("give cursor or after, not both", field="cursor")
    as_csv = format is Format.CSV or (format is None and _wants_csv(accept))
    key = key_of(project, name)
    with ctx.db.unit_of_work(read_only=True) as uow:
        born_at = uow.endpoints.get(key).created_at.timestamp()
        if not as_csv:
            rows = _json_rows(limit)
            page = uow.requests.page(
                key,
                filters,
                before=before,
                after=after,
                limit=rows,
                born_at=born_at,
                payloads=include_payloads,
            )
    if as_csv:
        rows = _csv_rows(limit)
        stream = _csv(ctx, key, filters, before, after, rows, born_at, include_payloads)
        disposition = f'attachment; filename="{split_key(key)[1]}-requests.csv"'
        return StreamingResponse(
            stream,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": disposition},
        )
    more = after is None and len(page) == rows
    body = {
        "items": [_item(s, include_payloads) for s in page],
        "next_cursor": str(page[-1].id) if more else None,
    }
    return JSONResponse(body)


def _json_rows(limit: int | None) -> int:
    if limit is None:
        return JSON_DEFAULT_ROWS
    if limit > JSON_MAX_ROWS:
        raise Invalid(
            f"limit: at most {JSON_MAX_ROWS} records a JSON page (CSV: {CSV_MAX_ROWS})",
            field="limit",
        )
    return limit


def _csv_rows(limit: int | None) -> int:
    return CSV_DEFAULT_ROWS if limit is None else limit


def _wants_csv(accept: str | None) -> bool:
    """`Accept` names text/csv before (or without) JSON."""
    if not accept:
        return False
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "text/csv" not in kinds:
        return False
    json_at = kinds.index("application/json") if "application/json" in kinds else len(kinds)
    return kinds.index("text/csv") < json_at


def _item(stored: StoredRecord, payloads: bool) -> dict[str, Any]:
    item = _values(stored)
    if not payloads:
        for column in PAYLOAD_COLUMNS:
            del item[column]
    return item


def _values(stored: StoredRecord) -> dict[str, Any]:
    """The record as its public fields (`RequestRecordPublic`): the id, the bare name."""
    r = stored.record
    return {
        "id": stored.id,
        "request_id": r.request_id,
        "endpoint": split_key(r.endpoint)[1],
        "project": r.project,
        "protocol": str(r.protocol),
        "route": r.route,
        "method": r.method,
        "status": r.status,
        "error": None if r.error is None else str(r.error),
        "received_at": r.received_at,
        "latency_ms": r.latency_ms,
        "queue_ms": r.queue_ms,
        "revision": r.revision,
        "replica_id": r.replica_id,
        "upstream_ms": r.upstream_ms,
        "ttfb_ms": r.ttfb_ms,
        "ttft_ms": r.ttft_ms,
        "tokens_in": r.tokens_in,
        "tokens_out": r.tokens_out,
        "streamed": r.streamed,
        "bytes_in": r.bytes_in,
        "bytes_out": r.bytes_out,
        "client": r.client,
        "user_agent": r.user_agent,
        "token_id": r.token_id,
        "task_id": r.task_id,
        "request_body": r.request_body,
        "response_body": r.response_body,
    }


def _csv(
    ctx: ApiContext,
    key: str,
    filters: RecordFilter,
    before: int | None,
    after: int | None,
    rows: int,
    born_at: float,
    payloads: bool,
) -> Iterator[str]:
    """The CSV text, a page of the store at a time (each its own short read)."""
    columns = csv_columns(payloads)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    yield out.getvalue()
    left = rows
    while left > 0:
        with ctx.db.unit_of_work(read_only=True) as uow:
            page = uow.requests.page(
                key,
                filters,
                before=before,
                after=after,
                limit=min(_CSV_PAGE, left),
                born_at=born_at,
                payloads=payloads,
            )
        if not page:
            return
        out.seek(0)
        out.truncate()
        for stored in page:
            values = _values(stored)
            writer.writerow([csv_cell(c, values[c]) for c in columns])
        yield out.getvalue()
        left -= len(page)
        if after is None:
            before = page[-1].id
        else:
            after = page[-1].id
