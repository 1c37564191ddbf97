"""The SDK's frameworks catalog: a mixin of `PodiumClient` (`frameworks`).

for f in podium.frameworks("text-generation"):
    print(f.name, f.usable, f.gpu)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel

from podium.core.catalog_schemas import FrameworkPublic

M = TypeVar("M", bound=BaseModel)


class CatalogMethods:
    """Needs `_request` and `_parse_list`."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def _parse_list(self, response: httpx.Response, cls: type[M]) -> list[M]: ...

    def frameworks(self, q: str | None = None) -> list[FrameworkPublic]:
        """Every framework an endpoint may name, with whether it is installed and usable on
        the server's backend; `q` searches names, summaries and tasks (case-insensitive)."""
        params = {} if q is None else {"q": q}
        return self._parse_list(self._request("GET", "/frameworks", params=params), FrameworkPublic)
