"""Who may act on which project, for the routes of projects, endpoints, models and what is
observed of them: one small helper, so a declarative dependency can replace it.

A token bound to other projects gets 403 on any by-name route of a project it is not bound
to, before anything is looked up (so it learns nothing about what the project holds); list
routes without `?project=` simply leave out the projects it may not read.
"""

from __future__ import annotations

from podium.core.access import Principal, Scope
from podium.core.errors import Forbidden


def require(caller: Principal, scope: Scope, project: str | None = None) -> None:
    """Forbidden unless `caller` holds `scope` (on `project`, when one is named)."""
    if caller.may(scope, project):
        return
    where = f" on project {project!r}" if project is not None else ""
    raise Forbidden(
        f"token {caller.name!r} ({caller.token_id[:4]}…) lacks scope {scope.value!r}{where}",
        field="project" if project is not None and scope in caller.scopes else "scope",
    )


def readable(caller: Principal) -> frozenset[str] | None:
    """The projects whose endpoints and models `caller` may list; None: every project."""
    if Scope.READ not in caller.scopes:
        return frozenset()
    return caller.projects
