"""The model repository as users change it: push a version, delete versions.

Files and rows are kept in step: a version's row is written first (which numbers it, under
the model's lock), then its files are committed, all in one unit of work; files are removed
again when anything after that fails. Deleting removes the rows first, then the files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from podium.api.services import views
from podium.api.services.checks import check_framework
from podium.api.services.uploads import check_declared_size, check_filename, receive, temp_folder
from podium.artifacts.store import ArtifactStore, StagedModel
from podium.core.access import DEFAULT_PROJECT, endpoint_key, split_key
from podium.core.errors import Conflict, NotFound, Retryable
from podium.core.ids import check_name, check_project
from podium.core.schemas import ModelVersionPublic
from podium.runtimes.registry import known_runtimes
from podium.store import Database, UnitOfWork
from podium.store.records import ModelVersionRecord


@dataclass(frozen=True, slots=True)
class Pushed:
    version: ModelVersionPublic
    duplicate: bool  # the latest version already had these bytes: nothing was created


class ModelService:
    def __init__(self, db: Database, artifacts: ArtifactStore, tmp_dir: Path) -> None:
        self._db = db
        self._artifacts = artifacts
        self._tmp_dir = tmp_dir

    async def push_upload(
        self,
        name: str,
        body: AsyncIterator[bytes],
        *,
        project: str = DEFAULT_PROJECT,
        filename: str,
        framework: str | None,
        content_length: str | None,
        limit: int,
    ) -> Pushed:
        """Receive a request body (a file named `filename`, or an archive) as the next
        version of model `name` of `project`. The arguments are checked before a byte is
        read."""
        check_name(name, "name")
        check_project(project)
        # Checked here too so a push to a missing project fails before its bytes are read
        # and written to disk; the store's check (`ModelRepo.add_version`, under the
        # project's lock) is the one that holds against a concurrent delete.
        with self._db.unit_of_work(read_only=True) as uow:
            uow.projects.require(project)
        check_filename(filename)
        if framework is not None:
            check_framework(framework)
        check_declared_size(content_length, limit)
        with temp_folder(self._tmp_dir) as folder:
            upload = folder / "body"
            await receive(body, upload, limit)
            return await run_in_threadpool(
                self.push, name, upload, project=project, filename=filename, framework=framework
            )

    def push(
        self,
        name: str,
        src: Path,
        *,
        project: str = DEFAULT_PROJECT,
        filename: str,
        framework: str | None,
        source: str = "",
    ) -> Pushed:
        """Stage `src` (named `filename` for the user) and record it as a new version of
        model `name` of `project`, unless the latest version holds the same bytes."""
        check_name(name, "name")
        key = endpoint_key(check_project(project), name)
        staged = self._artifacts.stage(src, filename=filename)
        try:
            framework = framework or _known(staged.framework_guess)
            return self._record(key, staged, framework, source or f"upload:{filename}")
        finally:
            self._artifacts.discard(staged)  # a no-op once committed

    def delete_version(self, name: str, version: int) -> None:
        with self._db.unit_of_work() as uow:
            uow.models.get(name, version)
            _refuse_if_used(uow, name, version)
            uow.models.delete(name, version)
        self._artifacts.remove(name, version)

    def delete_model(self, name: str) -> None:
        with self._db.unit_of_work() as uow:
            versions = uow.models.versions(name)
            _refuse_if_used(uow, name, None)
            for v in versions:
                uow.models.delete(name, v.version)
        for v in versions:
            self._artifacts.remove(name, v.version)

    def _record(self, name: str, staged: StagedModel, framework: str | None, source: str) -> Pushed:
        committed: int | None = None
        try:
            with self._db.unit_of_work() as uow:
                latest = _latest(uow, name)
                if latest is not None and latest.sha256 == staged.digest.sha256:
                    return Pushed(views.model_version(uow, latest), duplicate=True)
                version = uow.models.next_version(name)
                rec = uow.models.add_version(
                    name,
                    framework=framework,
                    sha256=staged.digest.sha256,
                    size_bytes=staged.digest.size_bytes,
                    files=staged.digest.files,
                    source=source,
                    path=str(self._artifacts.path_for(name, version)),
                )
                if rec.version != version:
                    raise Retryable(f"model {name} is being pushed by someone else; try again")
                self._commit_files(staged, name, version)
                committed = version
                out = Pushed(views.model_version(uow, rec), duplicate=False)
        except BaseException:
            if committed is not None:
                self._artifacts.remove(name, committed)
            raise
        return out

    def _commit_files(self, staged: StagedModel, name: str, version: int) -> None:
        try:
            self._artifacts.commit(staged, name, version)
        except Conflict:
            # Our row holds this number under the model's lock, so files already there were
            # left by a push that never reached the database: replace them.
            self._artifacts.remove(name, version)
            self._artifacts.commit(staged, name, version)


def _latest(uow: UnitOfWork, name: str) -> ModelVersionRecord | None:
    try:
        return uow.models.get(name)
    except NotFound:
        return None


def _known(guess: str | None) -> str | None:
    return guess if guess is not None and guess in known_runtimes() else None


def _refuse_if_used(uow: UnitOfWork, key: str, version: int | None) -> None:
    users = [split_key(k)[1] for k in uow.endpoints.endpoints_using(key, version)]
    if users:
        name = split_key(key)[1]
        what = f"{name}:{version}" if version is not None else name
        raise Conflict(
            f"model {what} is used by endpoint(s) {', '.join(users)}; update or delete them first",
            field="model",
        )
