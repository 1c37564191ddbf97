"""Model versions: the immutable, numbered entries of the model repository.

Only the rows live here; the files themselves belong to `podium.artifacts`.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.core.access import split_key
from podium.core.clock import Clock, SystemClock
from podium.core.errors import NotFound, Retryable
from podium.store.locks import LockSpace, lock_name
from podium.store.projects import ProjectRepo
from podium.store.records import ModelVersionRecord
from podium.store.tables import ModelVersionRow

_ADD_ATTEMPTS = 20


def _record(row: ModelVersionRow) -> ModelVersionRecord:
    return ModelVersionRecord(
        name=row.name,
        version=row.version,
        framework=row.framework,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        files=row.files,
        source=row.source,
        path=row.path,
        created_at=row.created_at,
        project=row.project,
    )


class ModelRepo:
    def __init__(self, session: Session, clock: Clock | None = None) -> None:
        self._s = session
        self._clock = clock or SystemClock()

    def add_version(
        self,
        name: str,
        *,
        framework: str | None,
        sha256: str,
        size_bytes: int,
        files: int,
        source: str,
        path: str,
    ) -> ModelVersionRecord:
        """Record the next version of `name` (1 for a new name). `name` is the model's key
        (`core.access.endpoint_key`); its project must exist (NotFound, field "project"), and
        is held against a concurrent delete until commit.

        Writers of one name are serialized (see `locks`); should a version number be taken
        anyway (another writer outside that discipline), the insert is retried with the next
        one inside a savepoint, so the unit of work stays usable.
        """
        project = split_key(name)[0]
        ProjectRepo(self._s).hold(project)  # its lock first (see `locks`)
        lock_name(self._s, LockSpace.MODEL, name)
        for _ in range(_ADD_ATTEMPTS):
            row = ModelVersionRow(
                name=name,
                project=project,
                version=self.next_version(name),
                framework=framework,
                sha256=sha256,
                size_bytes=size_bytes,
                files=files,
                source=source,
                path=path,
                created_at=self._clock.now(),
            )
            try:
                with self._s.begin_nested():
                    self._s.add(row)
            except IntegrityError:
                continue
            return _record(row)
        raise Retryable(f"could not number a new version of model {name!r}; try again")

    def next_version(self, name: str) -> int:
        """The number the next `add_version(name)` would get, 1 for a new name."""
        stmt = select(func.max(ModelVersionRow.version)).where(ModelVersionRow.name == name)
        latest = self._s.scalar(stmt)
        return 1 if latest is None else latest + 1

    def get(self, name: str, version: int | None = None) -> ModelVersionRecord:
        """Version `version` of `name`, or its latest version when `version` is None."""
        stmt = select(ModelVersionRow).where(ModelVersionRow.name == name)
        if version is None:
            stmt = stmt.order_by(ModelVersionRow.version.desc()).limit(1)
        else:
            stmt = stmt.where(ModelVersionRow.version == version)
        row = self._s.scalars(stmt).first()
        if row is None:
            raise self._not_found(name, version)
        return _record(row)

    def list_names(self, projects: Collection[str] | None = None) -> list[str]:
        """The keys of every model, of the `projects` given (all when None)."""
        stmt = select(ModelVersionRow.name).distinct().order_by(ModelVersionRow.name)
        if projects is not None:
            stmt = stmt.where(ModelVersionRow.project.in_(sorted(projects)))
        return list(self._s.scalars(stmt))

    def versions(self, name: str) -> list[ModelVersionRecord]:
        """Every version of `name`, oldest first; NotFound when there is none."""
        stmt = (
            select(ModelVersionRow)
            .where(ModelVersionRow.name == name)
            .order_by(ModelVersionRow.version)
        )
        rows = list(self._s.scalars(stmt))
        if not rows:
            raise self._not_found(name, None)
        return [_record(r) for r in rows]

    def delete(self, name: str, version: int) -> ModelVersionRecord:
        """Remove one version's row and return what it was."""
        record = self.get(name, version)
        self._s.execute(
            delete(ModelVersionRow).where(
                ModelVersionRow.name == name, ModelVersionRow.version == version
            )
        )
        return record

    def find_by_sha(self, name: str, sha256: str) -> ModelVersionRecord | None:
        """The newest version of `name` with this content hash, if any (to skip re-uploads)."""
        stmt = (
            select(ModelVersionRow)
            .where(ModelVersionRow.name == name, ModelVersionRow.sha256 == sha256)
            .order_by(ModelVersionRow.version.desc())
            .limit(1)
        )
        row = self._s.scalars(stmt).first()
        return None if row is None else _record(row)

    def _not_found(self, name: str, version: int | None) -> NotFound:
        if version is not None and self._s.scalar(
            select(ModelVersionRow.name).where(ModelVersionRow.name == name).limit(1)
        ):
            return NotFound(f"model {name!r} has no version {version}", field="model")
        return NotFound(f"model {name!r} not found", field="model")
