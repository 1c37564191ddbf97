"""A replica's internal routes (`/metrics`, `/health/…`, `/podium/…`): for Podium alone
(probes, scraping, the control API). Every way a caller names a replica path (a call
through the gateway, an async task, a job's `path`) is refused when it names one of
these, also once empty and dot segments are resolved and percent-escapes decoded."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

INTERNAL_EXACT = "metrics"
INTERNAL_PREFIXES = ("health/", "podium/")


def internal(sub: str) -> bool:
    """Whether `sub` (a decoded path after `/endpoints/{name}/`, without its leading `/`)
    names a replica's internal route (`a/../metrics` and `/metrics` too)."""
    if sub.startswith("/") or "//" in sub or "." in sub:
        resolved = posixpath.normpath("/" + sub).lstrip("/")
        if resolved == INTERNAL_EXACT or (resolved + "/").startswith(INTERNAL_PREFIXES):
            return True
    return sub == INTERNAL_EXACT or sub.startswith(INTERNAL_PREFIXES)


def internal_target(target: str) -> bool:
    """Whether a replica target (`/path?query`, as forwarded) names an internal route."""
    path = target.partition("?")[0]
    return internal(path[1:]) or internal(unquote(path)[1:])
