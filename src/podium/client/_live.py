"""The SDK's live view (`GET /api/v1/live`, what `podium top` polls): a mixin of
`PodiumClient`, over its plumbing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel

from podium.client._access import project_params
from podium.core.live_schemas import LiveView

M = TypeVar("M", bound=BaseModel)


class LiveMethods:
    """Needs `_request` and `_parse`."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def _parse(self, response: httpx.Response, cls: type[M]) -> M: ...

    def live(self, name: str | None = None, *, project: str | None = None) -> LiveView:
        """The gateway's cumulative counts now, per endpoint (of `project`; every project
        the token may read when None) and replica, or of the endpoint `name` alone. Rates
        and percentiles are differences between two calls (see `core.live_schemas`).
        `Unavailable` (503) from a server without an embedded gateway."""
        params: dict[str, str] = dict(project_params(project))
        if name is not None:
            params["name"] = name
        return self._parse(self._request("GET", "/live", params=params), LiveView)
