"""Which backend places this server's replicas: `local` (this machine) or `ray` (a cluster).

The one place that reads `Settings.backend`. The Ray backend's modules are imported only
when it is chosen, so a server with the local backend never imports `ray`.

For Ray, the nodes fetch repository models from this server's API (`ray_fetch`): a process
with the controller role (the only one that starts replicas) makes a token for them that
may only read (`Scope.READ`, every project), named `RAY_TOKEN_NAME` followed by the
process's address, at each start, and revokes the ones earlier starts of the same process
made. Keyed by process, not one for all: with several server processes (issue 16) a
standby or a gateway starting must not revoke the token the leader's actors use. The
token lives in this process's memory and in the actors' arguments (Ray's object store),
never in a log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from podium.backends.local import LocalBackend
from podium.core.access import Scope, issue_token
from podium.core.settings import BackendKind, Role, Settings
from podium.store.db import Database

if TYPE_CHECKING:
    from podium.backends.ray_backend import RayBackend

RAY_TOKEN_NAME = "ray-model-fetch"
RAY_TOKEN_CREATOR = "podium up"


def make_backend(settings: Settings, db: Database) -> LocalBackend | RayBackend:
    """The backend `settings.backend` names; nothing touches the cluster until the
    controller's first call (the Ray backend connects then, off the loop)."""
    if settings.backend is BackendKind.RAY:
        from podium.backends.ray_backend import RayBackend
        from podium.backends.ray_fetch import FetchAccess

        starts = Role.CONTROLLER in settings.roles
        token = _node_token(db, settings) if settings.auth and starts else None
        return RayBackend(settings, FetchAccess(settings.public_url, token))
    return LocalBackend(settings)


def node_token_name(settings: Settings) -> str:
    """The name of this process's node token: one per server process (its address)."""
    return f"{RAY_TOKEN_NAME}@{settings.host}:{settings.port}"


def _node_token(db: Database, settings: Settings) -> str:
    """A fresh read-only token for the nodes; this process's earlier ones are revoked."""
    issued = issue_token()
    name = node_token_name(settings)
    with db.unit_of_work() as uow:
        for old in uow.tokens.list():
            if old.name == name and old.creator == RAY_TOKEN_CREATOR:
                uow.tokens.revoke(old.id)
        uow.tokens.create(
            issued,
            name=name,
            scopes=(Scope.READ,),
            projects=None,
            creator=RAY_TOKEN_CREATOR,
        )
    return issued.token
