"""Health and the instance type catalog."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

import podium
from podium.api.access import AUTHENTICATED, PUBLIC
from podium.api.deps import CtxDep, SettingsDep
from podium.core.spec import InstanceType

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    version: str
    database: str  # "sqlite" or "postgresql"


@router.get("/health", response_model=Health, dependencies=[PUBLIC])
def health(ctx: CtxDep) -> Health:
    return Health(status="ok", version=podium.__version__, database=ctx.db.dialect)


@router.get("/instance-types", response_model=list[InstanceType], dependencies=[AUTHENTICATED])
def instance_types(settings: SettingsDep) -> list[InstanceType]:
    return list(settings.instance_types.values())
