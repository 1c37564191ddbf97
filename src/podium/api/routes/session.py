"""Who am I, and the browser's session: `POST /session` trades a token for two cookies.

    podium_session  the token; HttpOnly (no script reads it), SameSite=Strict, Path=/,
                    Secure when the request came over https
    podium_csrf     random; SameSite=Strict, readable by the page, which echoes it in the
                    `X-CSRF-Token` header of every request that changes something
                    (`deps.get_caller` checks it)

`DELETE /session` clears both.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from podium.api.access import AUTHENTICATED, PUBLIC
from podium.api.deps import CSRF_COOKIE, SESSION_COOKIE, CallerDep, CtxDep
from podium.api.problems import responses
from podium.api.services import access_views
from podium.api.services.access_views import WhoAmI
from podium.core.access import NOBODY_CHECKS, PRINCIPAL_KEY, AuthFailure, TokenDirectory
from podium.core.errors import Unauthenticated

router = APIRouter(tags=["access"], responses=responses(401, 422))


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=128, description="an API token")


@router.get("/whoami", response_model=WhoAmI, dependencies=[AUTHENTICATED])
def whoami(caller: CallerDep) -> WhoAmI:
    """The calling token: its id, name, granted scopes, projects and expiry."""
    return access_views.whoami(caller)


@router.post("/session", response_model=WhoAmI, dependencies=[PUBLIC])
def create_session(
    body: SessionCreate, request: Request, response: Response, ctx: CtxDep
) -> WhoAmI:
    """Log a browser in: the token is checked, then kept in an HttpOnly cookie."""
    if not ctx.settings.auth:
        return access_views.whoami(NOBODY_CHECKS)
    tokens = ctx.tokens if ctx.tokens is not None else TokenDirectory()
    result = tokens.authenticate(body.token)
    if isinstance(result, AuthFailure):
        raise Unauthenticated(result.value, field="token")
    request.scope[PRINCIPAL_KEY] = result  # the audit trail names who logged in
    response.headers["Cache-Control"] = "no-store"
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE, body.token, httponly=True, samesite="strict", path="/", secure=secure
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        httponly=False,
        samesite="strict",
        path="/",
        secure=secure,
    )
    return access_views.whoami(result)


@router.delete("/session", status_code=204, dependencies=[PUBLIC])
def delete_session(request: Request) -> Response:
    """Log the browser out: both cookies are cleared."""
    response = Response(status_code=204)
    secure = request.url.scheme == "https"
    for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", secure=secure, httponly=http_only, samesite="strict")
    return response
