"""A project's named secrets, stored as ciphertext (`store.secret_box` makes it).

The repository never sees a value: callers encrypt before `put` and decrypt what
`get_ciphertext` returns. `list` gives names and times only.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.core.errors import NotFound
from podium.store.projects import ProjectRepo
from podium.store.tables import SecretRow


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A secret as it may be shown: never its value."""

    project: str
    name: str
    created_by: str
    created_at: datetime
    updated_at: datetime


def _record(row: SecretRow) -> SecretRecord:
    return SecretRecord(
        project=row.project,
        name=row.name,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SecretRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def put(self, project: str, name: str, ciphertext: str, *, by: str) -> SecretRecord:
        """Create the secret, or replace its value (keeping who created it, and when).
        NotFound (field "project") when the project does not exist; it holds the project's
        lock shared (`ProjectRepo.hold`), so a concurrent delete of the project waits."""
        ProjectRepo(self._s, self._clock).hold(project)
        now = self._clock.now()
        row = self._s.get(SecretRow, (project, name))
        if row is None:
            row = SecretRow(
                project=project,
                name=name,
                ciphertext=ciphertext,
                created_by=by,
                created_at=now,
                updated_at=now,
            )
            self._s.add(row)
        else:
            row.ciphertext = ciphertext
            row.updated_at = now
        self._s.flush()
        return _record(row)

    def get_ciphertext(self, project: str, name: str) -> str:
        row = self._s.get(SecretRow, (project, name))
        if row is None:
            raise NotFound(f"secret {name!r} not found in project {project!r}", field="name")
        return row.ciphertext

    def exists(self, project: str, name: str) -> bool:
        return self._s.get(SecretRow, (project, name)) is not None

    def any(self) -> bool:
        """Whether any secret is stored (in any project): then the key must exist."""
        return bool(self._s.scalar(select(func.count()).select_from(SecretRow)))

    def list(self, projects: builtins.list[str] | None = None) -> builtins.list[SecretRecord]:
        """The secrets of `projects` (None: every project), by project and name."""
        stmt = select(SecretRow).order_by(SecretRow.project, SecretRow.name)
        if projects is not None:
            stmt = stmt.where(SecretRow.project.in_(projects))
        return [_record(r) for r in self._s.scalars(stmt)]

    def delete(self, project: str, name: str) -> None:
        row = self._s.get(SecretRow, (project, name))
        if row is None:
            raise NotFound(f"secret {name!r} not found in project {project!r}", field="name")
        self._s.delete(row)
        self._s.flush()
