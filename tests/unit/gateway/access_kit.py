"""Tokens and routes for the gateway's access tests (a real `TokenDirectory`, real tokens)."""

from __future__ import annotations

from collections.abc import Iterable

from podium.core.access import (
    Principal,
    RateLimit,
    Scope,
    TokenDirectory,
    TokenEntry,
    Visibility,
    endpoint_key,
    granted,
    issue_token,
)
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, ReplicaRoute


def token(
    directory: TokenDirectory,
    name: str,
    scopes: Iterable[Scope],
    projects: Iterable[str] | None = ("default",),
    *,
    expires_at: float | None = None,
    rate_limit: RateLimit | None = None,
) -> tuple[str, str]:
    """A token put in `directory`: (the bearer token, its id)."""
    issued = issue_token()
    principal = Principal(
        issued.token_id,
        name,
        granted(scopes),
        frozenset(projects) if projects is not None else None,
        expires_at,
        rate_limit,
    )
    directory.put(TokenEntry(principal, issued.secret_hash))
    return issued.token, issued.token_id


def route(
    project: str,
    name: str,
    replica: ReplicaRoute,
    visibility: Visibility = Visibility.PROTECTED,
    rate_limit: RateLimit | None = None,
) -> EndpointRoute:
    return EndpointRoute(
        endpoint_key(project, name),
        EndpointStatus.RUNNING,
        (replica,),
        project=project,
        visibility=visibility,
        rate_limit=rate_limit,
    )


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
