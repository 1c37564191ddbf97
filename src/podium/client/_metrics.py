"""The SDK's metrics history method: a mixin of `PodiumClient`, over its plumbing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from podium.client._access import project_params
from podium.core.metric_schemas import MetricHistory

M = TypeVar("M", bound=BaseModel)

When = datetime | float | int | str | None


def _when(value: When) -> str | None:
    """Unix seconds or an ISO 8601 time, as the API takes them (an aware datetime keeps its
    zone; a naive one is read as UTC by the server)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class MetricsMethods:
    """Needs `_request` and `_parse`."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def _parse(self, response: httpx.Response, cls: type[M]) -> M: ...

    def metrics_history(
        self,
        name: str,
        series: Iterable[str] | None = None,
        since: When = None,
        until: When = None,
        step: int | str | None = None,
        replica: str | None = None,
        *,
        project: str | None = None,
    ) -> MetricHistory:
        """The endpoint's (or one replica's) metrics history over [since, until) as aligned
        series (`MetricHistory`: `timestamps` and one list per series, None where nothing
        was stored). Defaults: every series, the last hour, the finest step that gives at
        most about 1000 points."""
        params: dict[str, str] = dict(project_params(project))
        if series is not None:
            params["series"] = ",".join(series)
        for key, value in (("from", _when(since)), ("to", _when(until))):
            if value is not None:
                params[key] = value
        if step is not None:
            params["step"] = str(step)
        if replica is not None:
            params["replica"] = replica
        path = f"/endpoints/{quote(name, safe='')}/metrics"
        return self._parse(self._request("GET", path, params=params), MetricHistory)
