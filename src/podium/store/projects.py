"""Projects: the namespaces endpoints, models, secrets and tokens belong to, with quotas.

`default` is made by migration 0003 and can be neither deleted nor missing: should its row
be gone (a database emptied by hand), it still reads as a project without quotas.
A project that holds endpoints, models or secrets cannot be deleted (409).
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from podium.core.access import DEFAULT_PROJECT
from podium.core.clock import Clock, SystemClock
from podium.core.errors import Conflict, NotFound
from podium.core.ids import check_project
from podium.core.quotas import QUOTA_NAMES, Quotas
from podium.store.locks import LockSpace, lock_name
from podium.store.records import ProjectRecord
from podium.store.tables import EndpointRow, ModelVersionRow, ProjectRow, SecretRow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSET: object = object()


def _record(row: ProjectRow) -> ProjectRecord:
    return ProjectRecord(
        name=row.name,
        description=row.description,
        quotas=Quotas(**{q: getattr(row, q) for q in QUOTA_NAMES}),
        created_at=row.created_at,
    )


def _set_quotas(row: ProjectRow, quotas: Quotas) -> None:
    for q in QUOTA_NAMES:
        setattr(row, q, getattr(quotas, q))


def _default() -> ProjectRecord:
    return ProjectRecord(DEFAULT_PROJECT, None, Quotas(), _EPOCH)


def not_found(name: str) -> NotFound:
    return NotFound(f"project {name!r} not found", field="project")


class ProjectRepo:
    def __init__(self, session: Session, clock: Clock | None = None) -> None:
        self._s = session
        self._clock = clock or SystemClock()

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> ProjectRecord:
        row = self._s.get(ProjectRow, name)
        if row is not None:
            return _record(row)
        if name == DEFAULT_PROJECT:
            return _default()
        raise not_found(name)

    def require(self, name: str) -> None:
        """NotFound (field "project") unless the project exists."""
        self.get(name)

    def list(self, names: Collection[str] | None = None) -> builtins.list[ProjectRecord]:
        """Projects by name; only those in `names` when given."""
        stmt = select(ProjectRow).order_by(ProjectRow.name)
        if names is not None:
            stmt = stmt.where(ProjectRow.name.in_(sorted(names)))
        out = [_record(r) for r in self._s.scalars(stmt)]
        wanted = names is None or DEFAULT_PROJECT in names
        if wanted and all(p.name != DEFAULT_PROJECT for p in out):
            out = sorted([*out, _default()], key=lambda p: p.name)
        return out

    def with_quotas(self) -> dict[str, Quotas]:
        """The quotas of every project that has one (one query: the controller's pass)."""
        stmt = select(ProjectRow).where(
            or_(*(getattr(ProjectRow, q).is_not(None) for q in QUOTA_NAMES))
        )
        return {r.name: _record(r).quotas for r in self._s.scalars(stmt)}

    # ------------------------------------------------------------------ writes

    def create(
        self, name: str, *, description: str | None = None, quotas: Quotas | None = None
    ) -> ProjectRecord:
        check_project(name, "name")
        lock_name(self._s, LockSpace.PROJECT, name)
        if self._s.get(ProjectRow, name, populate_existing=True) is not None:
            raise Conflict(f"project {name!r} already exists", field="name")
        q = quotas or Quotas()
        row = ProjectRow(name=name, description=description, created_at=self._clock.now())
        _set_quotas(row, q)
        self._s.add(row)
        self._s.flush()
        return _record(row)

    def update(
        self,
        name: str,
        *,
        description: str | object | None = _UNSET,
        quotas: Quotas | None = None,
    ) -> ProjectRecord:
        """Change the description (when given; None clears it) and the quotas (when given:
        every one, None for unlimited)."""
        row = self._load_for_update(name)
        if description is not _UNSET:
            row.description = description  # type: ignore[assignment]
        if quotas is not None:
            _set_quotas(row, quotas)
        self._s.flush()
        return _record(row)

    def delete(self, name: str) -> ProjectRecord:
        """Remove an empty project (Conflict for `default` and for one that holds anything).
        Its lock, taken first, waits for units of work adding to it (`hold`)."""
        if name == DEFAULT_PROJECT:
            raise Conflict("project 'default' cannot be deleted", field="name")
        row = self._load_for_update(name)
        held = [
            what
            for what, table in (
                ("endpoints", EndpointRow),
                ("models", ModelVersionRow),
                ("secrets", SecretRow),
            )
            if self._s.scalar(select(table.project).where(table.project == name).limit(1))
        ]
        if held:
            raise Conflict(
                f"project {name!r} still holds {', '.join(held)}: delete them first",
                field="name",
            )
        record = _record(row)
        self._s.delete(row)
        self._s.flush()
        return record

    def hold(self, name: str) -> None:
        """Before adding to the project (an endpoint, a model version): take its lock shared,
        so a concurrent `delete` waits for this unit of work (and then sees what it added),
        and check, freshly read under the lock, that it exists (NotFound, field "project")."""
        lock_name(self._s, LockSpace.PROJECT, name, shared=True)
        if name == DEFAULT_PROJECT:
            return
        if self._s.get(ProjectRow, name, populate_existing=True) is None:
            raise not_found(name)

    def lock(self, name: str) -> None:
        """Serialize writers that count the project's usage (quota checks) until commit."""
        lock_name(self._s, LockSpace.PROJECT, name)

    # ------------------------------------------------------------------ helpers

    def _load_for_update(self, name: str) -> ProjectRow:
        lock_name(self._s, LockSpace.PROJECT, name)
        row = self._s.get(ProjectRow, name, populate_existing=True, with_for_update=True)
        if row is None:
            if name == DEFAULT_PROJECT:  # its row is gone: make it again
                row = ProjectRow(name=name, created_at=self._clock.now())
                self._s.add(row)
                self._s.flush()
                return row
            raise not_found(name)
        return row
