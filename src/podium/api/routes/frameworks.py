"""The frameworks catalog: what an endpoint's `framework:` may name, and whether it is
installed and usable on this backend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from podium.api.access import From, needs
from podium.api.deps import SettingsDep
from podium.api.problems import responses
from podium.api.services.catalog import CatalogService
from podium.core.access import Scope
from podium.core.catalog_schemas import QUERY_MAX, FrameworkPublic

router = APIRouter(prefix="/frameworks", tags=["frameworks"], responses=responses(403, 422))


@router.get("", response_model=list[FrameworkPublic], dependencies=[needs(Scope.READ, From.ANY)])
def list_frameworks(
    settings: SettingsDep,
    q: Annotated[
        str | None,
        Query(
            max_length=QUERY_MAX,
            description="search the name, summary and tasks (case-insensitive)",
        ),
    ] = None,
) -> list[FrameworkPublic]:
    """Every framework (built-ins, presets, `command`, `container`, installed plugins),
    sorted by name."""
    return CatalogService(settings=settings).list(q)
