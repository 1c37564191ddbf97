"""The quota check every endpoint change that may grow a project's usage goes through
(create, update, scale, resume, wake); the arithmetic is `core.quotas`."""

from __future__ import annotations

from podium.core import quotas
from podium.core.errors import Invalid
from podium.core.phases import EndpointStatus
from podium.core.quotas import Usage
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec
from podium.store import UnitOfWork
from podium.store.records import EndpointRecord


def usage_of(settings: Settings, rec: EndpointRecord) -> Usage:
    """What one endpoint uses of its project's quotas."""
    return endpoint_usage(settings, rec.status, rec.desired_replicas, rec.spec)


def endpoint_usage(
    settings: Settings, status: EndpointStatus, desired: int, spec: EndpointSpec
) -> Usage:
    """`desired` replicas of `spec`'s size (`Settings.replica_size`; nothing for an
    instance type these settings no longer know)."""
    try:
        size = settings.replica_size(spec)
    except Invalid:
        return quotas.endpoint_usage(status, desired, 0.0, 0)
    return quotas.endpoint_usage(status, desired, size.cpus, size.gpus, size.memory_mb)


def project_usage(uow: UnitOfWork, settings: Settings, project: str) -> Usage:
    return quotas.total(usage_of(settings, r) for r in uow.endpoints.list(projects=[project]))


def check_quota(uow: UnitOfWork, settings: Settings, project: str, key: str, after: Usage) -> None:
    """QuotaExceeded (field = the quota) when endpoint `key` of `project` using `after`
    (instead of what it uses now; nothing for a new one) would pass one of the project's
    quotas. Takes the project's lock first, so two changes cannot both pass on PostgreSQL
    (SQLite serializes writers anyway)."""
    limits = uow.projects.get(project).quotas
    if not limits.any():
        return
    uow.projects.lock(project)
    records = uow.endpoints.list(projects=[project])
    now = quotas.total(usage_of(settings, r) for r in records)
    mine = quotas.total(usage_of(settings, r) for r in records if r.name == key)
    quotas.check(project, limits, now, now - mine + after)
