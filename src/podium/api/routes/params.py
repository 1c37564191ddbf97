"""Query parameters shared by the routes of endpoints, models and what is observed of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from podium.core.access import DEFAULT_PROJECT
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
