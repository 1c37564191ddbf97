"""Query parameters shared by the routes of endpoints, models and what is observed of them."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query

from podium.core.access import DEFAULT_PROJECT, PROJECT_SEPARATOR, endpoint_key
from podium.core.errors import Invalid, NotFound
from podium.core.ids import PROJECT_RE, PROJECT_RULE, check_project

_DESCRIPTION = f"the project ({PROJECT_RULE})"


def _project(
    project: Annotated[
        str,
        Query(
            description=f"{_DESCRIPTION}; `default` when absent",
            max_length=15,
            json_schema_extra={"pattern": PROJECT_RE.pattern},
        ),
    ] = DEFAULT_PROJECT,
) -> str:
    return check_project(project)


def _some_project(
    project: Annotated[
        str | None,
        Query(
            description=f"{_DESCRIPTION}; every project the token may read when absent",
            max_length=15,
            json_schema_extra={"pattern": PROJECT_RE.pattern},
        ),
    ] = None,
) -> str | None:
    return None if project is None else check_project(project)


# `?project=` of a by-name route: `default` when absent.
ProjectDep = Annotated[str, Depends(_project)]
# `?project=` of a list route: None (every project the caller may read) when absent.
SomeProjectDep = Annotated[str | None, Depends(_some_project)]


def key_of(project: str, name: str, kind: str = "endpoint") -> str:
    """The key (`core.access.endpoint_key`) of `name` in `project`. A name with a dot cannot
    exist; it is a 404 here, never read as a key (`team.chat` asked in `default` would
    otherwise reach project team's endpoint past the check on `default`)."""
    if PROJECT_SEPARATOR in name:
        field = "model" if kind == "model" else "name"
        raise NotFound(f"{kind} {name!r} not found", field=field)
    return endpoint_key(project, name)


def unix_time(value: str | None, field: str) -> float | None:
    """Unix seconds, or an ISO 8601 time (UTC when it names no zone)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(
                f"{field} must be unix seconds or an ISO 8601 time, not {value!r}", field=field
            ) from None
        seconds = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(seconds) or not 0 <= seconds < 2**40:
        raise Invalid(f"{field} is out of range: {value!r}", field=field)
    return seconds
