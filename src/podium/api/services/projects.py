"""Projects as users change them, and their views with what they use of their quotas."""

from __future__ import annotations

from collections.abc import Collection

from podium.api.services.quotas import project_usage, usage_of
from podium.core import quotas
from podium.core.ids import check_project
from podium.core.quotas import Quotas, Usage
from podium.core.schemas import (
    ProjectCreate,
    ProjectPublic,
    ProjectUpdate,
    QuotasModel,
    UsagePublic,
)
from podium.core.settings import Settings
from podium.store import Database, UnitOfWork
from podium.store.records import ProjectRecord


def view(rec: ProjectRecord, usage: Usage) -> ProjectPublic:
    q = rec.quotas
    return ProjectPublic(
        name=rec.name,
        description=rec.description,
        quotas=QuotasModel.model_validate(quotas.describe(q)),
        usage=UsagePublic(
            endpoints=usage.endpoints,
            replicas=usage.replicas,
            cpus=round(usage.cpus, 6),
            gpus=usage.gpus,
            memory_mb=usage.memory_mb,
        ),
        created_at=rec.created_at,
    )


def views(
    uow: UnitOfWork, settings: Settings, names: Collection[str] | None
) -> list[ProjectPublic]:
    """The projects (those in `names`, every one when None), with their usage."""
    records = uow.projects.list(names)
    wanted = [r.name for r in records]
    used: dict[str, Usage] = {}
    for ep in uow.endpoints.list(projects=wanted):
        used[ep.project] = used.get(ep.project, Usage()) + usage_of(settings, ep)
    return [view(r, used.get(r.name, Usage())) for r in records]


def one(uow: UnitOfWork, settings: Settings, name: str) -> ProjectPublic:
    return view(uow.projects.get(name), project_usage(uow, settings, name))


def _quotas(model: QuotasModel) -> Quotas:
    return Quotas(**model.model_dump())


def create(db: Database, settings: Settings, body: ProjectCreate) -> ProjectPublic:
    check_project(body.name, "name")
    with db.unit_of_work() as uow:
        rec = uow.projects.create(
            body.name, description=body.description, quotas=_quotas(body.quotas)
        )
        return view(rec, Usage())


def update(db: Database, settings: Settings, name: str, body: ProjectUpdate) -> ProjectPublic:
    """Quotas named in the body are set (null: unlimited); the others are kept. A quota
    lower than what is in use is allowed: nothing is stopped, growth is refused."""
    with db.unit_of_work() as uow:
        old = uow.projects.get(name)
        new_quotas = None
        if body.quotas is not None:
            given = body.quotas.model_dump(include=body.quotas.model_fields_set)
            current = {q: getattr(old.quotas, q) for q in quotas.QUOTA_NAMES}
            new_quotas = Quotas(**{**current, **given})
        if "description" in body.model_fields_set:
            uow.projects.update(name, description=body.description, quotas=new_quotas)
        else:
            uow.projects.update(name, quotas=new_quotas)
        return one(uow, settings, name)


def delete(db: Database, name: str) -> None:
    with db.unit_of_work() as uow:
        uow.projects.delete(name)
