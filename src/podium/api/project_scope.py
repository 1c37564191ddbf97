"""Scope checks of the secrets and usage routes, in one place (H1's declarative `Needs`
dependency may replace them): a caller needs `scope` on the project it names; without a
project, it sees the projects it may read."""

from __future__ import annotations

from podium.core.access import Principal, Scope
from podium.core.errors import Forbidden


def require(caller: Principal, scope: Scope, project: str) -> None:
    """403 naming the missing scope and project, unless the caller holds it."""
    if not caller.may(scope, project):
        raise Forbidden(
            f"token {caller.name!r} ({caller.token_id[:4]}…) lacks scope {scope.value!r} "
            f"on project {project!r}",
            field="project",
        )


def readable(caller: Principal, project: str | None) -> list[str] | None:
    """The projects a read may cover: `[project]` when one is named (403 if the caller may
    not read it); else every project (None) for a token of every project, or the caller's."""
    if project is not None:
        require(caller, Scope.READ, project)
        return [project]
    if not caller.may(Scope.READ):
        raise Forbidden(f"token {caller.name!r} ({caller.token_id[:4]}…) lacks scope 'read'")
    return None if caller.projects is None else sorted(caller.projects)
