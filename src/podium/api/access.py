"""What each control route needs: `dependencies=[needs(Scope.DEPLOY)]` on the route.

`needs(scope, From.X)` builds a FastAPI dependency that finds the project the action
touches, authenticates the caller (`deps.get_caller`: bearer token or session cookie + CSRF)
and checks `caller.may(scope, project)`:

    From.QUERY  the `?project=` query parameter, `default` when absent (by-name routes)
    From.BODY   the JSON body's `project` field, `default` when absent (POST /endpoints)
    From.ANY    `?project=` when given, else: the scope on any project (list routes)
    From.PATH   the `{name}` path parameter (routes of a project itself: /projects/{name})
    From.NONE   no project: the token's scope alone (tokens, audit, instance types)
    From.ALL    the scope on every project: a token bound to projects never passes
                (creating, changing and deleting projects and their quotas)

401 when no valid token was given, 403 naming the scope and the project otherwise. The
project and the principal are left in the request's scope for the audit trail
(`api/audit.py`), which also asks here for the object's state before a change.
`PUBLIC` marks the few routes that need no token, `AUTHENTICATED` those that need any
valid token. Every route in the OpenAPI document
carries one or the other (tests/unit/api/test_auth_matrix.py checks both the marks and
what each answers).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from enum import StrEnum
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from podium.api import audit
from podium.api.deps import SAFE_METHODS, get_caller, get_ctx
from podium.api.problems import from_podium_error
from podium.core.access import DEFAULT_PROJECT, PRINCIPAL_KEY, Principal, Scope
from podium.core.errors import Forbidden, PodiumError
from podium.core.ids import PROJECT_RE, check_project

ACCESS_MARK = "__podium_access__"  # attribute of every dependency made here


class From(StrEnum):
    QUERY = "query"
    BODY = "body"
    ANY = "any"
    PATH = "path"
    NONE = "none"
    ALL = "all"


def needs(scope: Scope, where: From = From.QUERY) -> Any:
    """A `Depends(...)` that lets the request through only for a caller holding `scope`
    (on the project found as `where` says)."""

    async def check(request: Request) -> Principal:
        ctx = get_ctx(request)
        project = await _project(request, where)
        if project is not None and PROJECT_RE.match(project):
            request.scope[audit.PROJECT_KEY] = project
        caller = get_caller(request, ctx)
        if project is not None:
            check_project(project)
        if not caller.may(scope, project) or (where is From.ALL and caller.projects is not None):
            raise Forbidden(_refusal(caller, scope, project, where), field="scope")
        if request.method not in SAFE_METHODS:
            before = await run_in_threadpool(audit.state_before, request, ctx, project)
            if before is not None:
                request.scope[audit.BEFORE_KEY] = before
        return caller

    setattr(check, ACCESS_MARK, (scope, where))
    return Depends(check)


def _public() -> None:
    """Needs no token (health, `POST /session`)."""


def _authenticated(request: Request) -> Principal:
    """Any valid token, whatever its scopes (whoami, instance types)."""
    return get_caller(request, get_ctx(request))


setattr(_public, ACCESS_MARK, None)
setattr(_authenticated, ACCESS_MARK, "token")
PUBLIC = Depends(_public)
AUTHENTICATED = Depends(_authenticated)


async def _project(request: Request, where: From) -> str | None:
    if where in (From.NONE, From.ALL):
        return None
    if where is From.BODY:
        return await _body_project(request)
    if where is From.PATH:
        name = request.path_params.get("name")
        return name if isinstance(name, str) else DEFAULT_PROJECT
    given = request.query_params.get("project")
    if given is None and where is From.QUERY:
        return DEFAULT_PROJECT
    return given


async def _body_project(request: Request) -> str:
    """The `project` of a JSON object body (FastAPI has read the body already, so this
    costs a parse, not a read). A body that is not a JSON object, or that cannot be parsed
    at all (bad UTF-8, nested too deep for the parser: RecursionError), is the route's 422
    to give once the caller is known; until then it counts as the default project."""
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        return DEFAULT_PROJECT
    project = body.get("project") if isinstance(body, dict) else None
    return project if isinstance(project, str) else DEFAULT_PROJECT


def _refusal(caller: Principal, scope: Scope, project: str | None, need: From) -> str:
    if need is From.ALL:
        where = "on every project"
    else:
        where = f"on project {project!r}" if project is not None else "on any project"
    return f"token {caller.name!r} ({caller.token_id}) lacks scope {scope.value!r} {where}"


def routes(app: FastAPI) -> Iterator[tuple[frozenset[str], str, list[Any]]]:
    """`(methods, path, requirements)` of every FastAPI route of `app`, those of included
    routers too (FastAPI 0.13x+ keeps an included router whole in `app.routes`)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied into app.routes
        contexts: Iterable[Any] = app.routes
    else:
        contexts = iter_route_contexts(app.routes)
    for route in contexts:
        dependant = getattr(route, "dependant", None)
        if dependant is None or not getattr(route, "include_in_schema", False):
            continue
        marks = [requirement(d.call) for d in dependant.dependencies]
        yield frozenset(route.methods or ()), str(route.path_format), marks


def requirement(dependency: Any) -> tuple[Scope, From] | str | bool | None:
    """What a dependency callable made here asks: `(scope, where)`, "token" for
    AUTHENTICATED, None for PUBLIC, False when it is not one of ours (for tests that check
    every route)."""
    mark = getattr(dependency, ACCESS_MARK, False)
    return mark


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def check_before_body_errors(app: FastAPI) -> None:
    """FastAPI parses a JSON body before any dependency runs, so a malformed body would be
    answered 422 even to a caller with no token. Wrap the handlers of those errors: when
    the route's access check has not run yet, it runs first, and a caller who may not call
    the route gets its 401/403 instead of learning anything about its body."""
    for kind in (RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, _checked_first(app.exception_handlers[kind]))


def _checked_first(handler: Handler) -> Handler:
    async def checked(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 422)
        route = request.scope.get("route")
        if (
            status in (400, 422)
            and isinstance(route, APIRoute)
            and PRINCIPAL_KEY not in request.scope
        ):
            for dependency in route.dependant.dependencies:
                if requirement(dependency.call) in (False, None):
                    continue
                try:
                    outcome = dependency.call(request)  # type: ignore[misc]
                    if inspect.isawaitable(outcome):
                        await outcome
                except PodiumError as refusal:
                    return from_podium_error(refusal)
        answer = handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return checked


def readable(caller: Principal) -> frozenset[str] | None:
    """The projects whose endpoints and models `caller` may list (None: every project);
    a list route without `?project=` leaves the others out."""
    if Scope.READ not in caller.scopes:
        return frozenset()
    return caller.projects
