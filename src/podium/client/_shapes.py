"""What the hf-shaped and Launch-shaped functions share: a default client, and turning flat
keyword arguments into an endpoint spec (create) or a change (update).

Arguments left at None are not sent: the server's defaults apply on create, the current
value stays on update. The `scaling` and `resources` blocks are sent whole, so an update
that sets one knob of a block (`max_replica=3`) merges it into the endpoint's current block
rather than resetting the others.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from podium.client._access import DEFAULT_URL
from podium.client._client import PodiumClient
from podium.core.spec import EndpointSpec

_DEFAULTS: dict[tuple[str, str | None], PodiumClient] = {}


def default_client(
    client: PodiumClient | None = None, *, url: str | None = None, token: str | None = None
) -> PodiumClient:
    """`client` when given; else one client per (url, token), made on first use from
    `url` (else $PODIUM_URL) and `token` (else $PODIUM_TOKEN or the local credentials) and
    kept for the process, as huggingface_hub keeps its `HfApi`."""
    if client is not None:
        return client
    key = ((url or os.environ.get("PODIUM_URL") or DEFAULT_URL).rstrip("/"), token)
    if key not in _DEFAULTS:
        _DEFAULTS[key] = PodiumClient(key[0], token=token)
    return _DEFAULTS[key]


def given(**fields: Any) -> dict[str, Any]:
    """The arguments that were given (not None)."""
    return {k: v for k, v in fields.items() if v is not None}


def create_body(
    *, scaling: Mapping[str, Any], resources: Mapping[str, Any], **fields: Any
) -> dict[str, Any]:
    """An `EndpointCreate` mapping: the fields given, and each block when any of its knobs
    is given."""
    body = given(**fields)
    if blocks := given(**scaling):
        body["scaling"] = blocks
    if size := given(**resources):
        body["resources"] = size
    return body


def update_body(
    current: EndpointSpec,
    *,
    scaling: Mapping[str, Any],
    resources: Mapping[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    """An `EndpointUpdate` mapping against `current`: the fields given, and each block
    given in part merged into the current one."""
    body = given(**fields)
    if knobs := given(**scaling):
        body["scaling"] = {**current.scaling.model_dump(), **knobs}
    if size := given(**resources):
        now = current.resources.model_dump() if current.resources else {}
        body["resources"] = {**now, **size}
    return body
