"""An endpoint's callback signing key (issue 13): read it (made on first use), rotate it.

Callbacks are signed `X-Podium-Signature: t=…,v1=HMAC-SHA256(key, f"{t}." + body)`
(`core.callbacks`); a receiver checks them with this key (`podium.client.verify_signature`).
The key opens every callback of the endpoint, so it needs `deploy` on the project. It
appears only in these answers: the audit trail redacts it (`api/audit.py`) and nothing
logs it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from podium.api.access import needs
from podium.api.deps import CtxDep
from podium.api.problems import responses
from podium.api.routes.params import ProjectDep, key_of
from podium.core.access import Scope
from podium.core.ids import NAME_RE, NAME_RULE
from podium.core.task_schemas import CallbackKeyOut
from podium.store.secret_box import SecretBox

router = APIRouter(prefix="/endpoints", tags=["tasks"], responses=responses(401, 403, 422))

EndpointName = Annotated[
    str, Path(description=NAME_RULE, json_schema_extra={"pattern": NAME_RE.pattern})
]


@router.get(
    "/{name}/callback-key",
    response_model=CallbackKeyOut,
    responses=responses(404, 503),
    dependencies=[needs(Scope.DEPLOY)],
)
def get_callback_key(name: EndpointName, project: ProjectDep, ctx: CtxDep) -> CallbackKeyOut:
    """The key the endpoint's task callbacks are signed with (hex), made on first use."""
    key = key_of(project, name)
    box = SecretBox(ctx.settings.secret_key_path)
    with ctx.db.unit_of_work() as uow:
        uow.endpoints.get(key)
        secret = uow.callback_keys.get_or_create(key, box)
    return CallbackKeyOut(key=secret.hex())


@router.post(
    "/{name}/callback-key/rotate",
    response_model=CallbackKeyOut,
    responses=responses(404, 503),
    dependencies=[needs(Scope.DEPLOY)],
    openapi_extra={"x-podium-action": "callback_key.rotate"},
)
def rotate_callback_key(name: EndpointName, project: ProjectDep, ctx: CtxDep) -> CallbackKeyOut:
    """A new key: callbacks sent from now on are signed with it (the old one stops
    verifying at once)."""
    key = key_of(project, name)
    box = SecretBox(ctx.settings.secret_key_path)
    with ctx.db.unit_of_work() as uow:
        uow.endpoints.get(key)
        secret = uow.callback_keys.rotate(key, box)
    return CallbackKeyOut(key=secret.hex())
