"""The SDK's request records methods (`requests`, `iter_requests`, `requests_csv`): a mixin
of `PodiumClient`, over its plumbing (`GET /api/v1/endpoints/{name}/requests`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from podium.client._access import project_params
from podium.core.record_schemas import RequestRecordPage, RequestRecordPublic, StatusClass

M = TypeVar("M", bound=BaseModel)
Instant = float | datetime | str  # unix seconds, an aware datetime, or ISO 8601 text


class RecordMethods:
    """Needs `_request` and `_parse`."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def _parse(self, response: httpx.Response, cls: type[M]) -> M: ...

    def requests(
        self,
        name: str,
        *,
        status: StatusClass | str | None = None,
        min_latency_ms: float | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        replica: str | None = None,
        revision: int | None = None,
        request_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        after: int | None = None,
        include_payloads: bool = False,
        project: str | None = None,
    ) -> RequestRecordPage:
        """One page of the endpoint's request records, newest first (`limit` ≤ 1000).
        `page.next_cursor`, given as `cursor`, asks for the next (older) page; `after=id`
        asks for the records newer than that id, oldest first. `status`: 2xx, 3xx, 4xx,
        5xx, or error (no response, 400 or more, or a failure class)."""
        params = _params(
            status, min_latency_ms, since, until, replica, revision, request_id, include_payloads
        )
        params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        if after is not None:
            params["after"] = after
        response = self._request("GET", _path(name), params={**params, **project_params(project)})
        return self._parse(response, RequestRecordPage)

    def iter_requests(
        self,
        name: str,
        *,
        status: StatusClass | str | None = None,
        min_latency_ms: float | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        replica: str | None = None,
        revision: int | None = None,
        request_id: str | None = None,
        page_size: int = 1000,
        include_payloads: bool = False,
        project: str | None = None,
    ) -> Iterator[RequestRecordPublic]:
        """Every matching record, newest first, a page (`page_size`) at a time: a
        generator that asks for the next page only when the last one is used up."""
        cursor: str | None = None
        while True:
            page = self.requests(
                name,
                status=status,
                min_latency_ms=min_latency_ms,
                since=since,
                until=until,
                replica=replica,
                revision=revision,
                request_id=request_id,
                limit=page_size,
                cursor=cursor,
                include_payloads=include_payloads,
                project=project,
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def requests_csv(
        self,
        name: str,
        *,
        status: StatusClass | str | None = None,
        min_latency_ms: float | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        replica: str | None = None,
        revision: int | None = None,
        request_id: str | None = None,
        limit: int | None = None,
        include_payloads: bool = False,
        project: str | None = None,
    ) -> str:
        """The matching records as CSV text (a header row, newest first): at most `limit`
        rows (None: the server's default, 10000; at most 100000)."""
        params = _params(
            status, min_latency_ms, since, until, replica, revision, request_id, include_payloads
        )
        params["format"] = "csv"
        if limit is not None:
            params["limit"] = limit
        response = self._request("GET", _path(name), params={**params, **project_params(project)})
        return response.text


def _path(name: str) -> str:
    return f"/endpoints/{quote(name, safe='')}/requests"


def _params(
    status: StatusClass | str | None,
    min_latency_ms: float | None,
    since: Instant | None,
    until: Instant | None,
    replica: str | None,
    revision: int | None,
    request_id: str | None,
    include_payloads: bool,
) -> dict[str, Any]:
    given: dict[str, Any] = {
        "status": None if status is None else str(status),  # the server checks it
        "min_latency_ms": min_latency_ms,
        "since": _instant(since),
        "until": _instant(until),
        "replica": replica,
        "revision": revision,
        "request_id": request_id,
    }
    params = {k: v for k, v in given.items() if v is not None}
    if include_payloads:
        params["include_payloads"] = "true"
    return params


def _instant(value: Instant | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
