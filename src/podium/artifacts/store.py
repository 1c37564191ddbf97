"""The model repository's files: stage, commit, remove immutable model versions.

Layout under `root` (settings.artifacts_dir), created on the first write:

    staging/<random>/          a model being received (copied, unpacked, hashed)
    models/<name>/<version>/   committed versions: read-only files in read-only folders

Staging and models live on one file system, so a commit is a single atomic rename and a
version folder is either complete or absent. The database side (version numbers, sha256,
who uses what) is `store/`'s job; the API calls, in this order:

    staged = artifacts.stage(upload)          # copy / unpack + hash; nothing visible yet
    version = <next version from the DB>
    artifacts.commit(staged, name, version)   # or artifacts.discard(staged) on DB failure
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from podium.artifacts.detect import detect_framework
from podium.artifacts.hashing import TreeDigest, list_files, sha256_tree
from podium.artifacts.unpack import is_archive, safe_extract
from podium.core.access import split_key
from podium.core.errors import Conflict, Invalid, NotFound
from podium.core.ids import check_name, check_project
from podium.core.settings import ArchiveLimits

__all__ = ["ArtifactStore", "StagedModel", "detect_framework"]

# Owner-only, like everything in PODIUM_HOME (replicas run as the same user).
_FILE_MODE = 0o600
_READ_ONLY_FILE = 0o400
_READ_ONLY_DIR = 0o500
_WRITABLE_DIR = 0o700


@dataclass(frozen=True, slots=True)
class StagedModel:
    """A model received into staging, hashed, not yet visible as a version."""

    path: Path
    digest: TreeDigest
    framework_guess: str | None


class ArtifactStore:
    """Model versions as folders on local disk (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        limits: ArchiveLimits | None = None,
        max_bytes: int | None = None,
        max_entries: int | None = None,
    ) -> None:
        self.root = root
        self.limits = limits or ArchiveLimits()  # for unpacking an archive
        self.max_bytes = max_bytes  # overrides of `limits`
        self.max_entries = max_entries

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    # ------------------------------------------------------------------ receive

    def stage(self, src: Path, *, filename: str | None = None) -> StagedModel:
        """Copy a folder or a file, or safely unpack an archive, into staging, then hash it.

        `filename` is the name the file had for the user (an upload's temp file has none):
        it decides whether the file is an archive and names a single-file model. A single
        file is staged in a folder of its own; an archive whose entries all sit in one
        top-level folder is unpacked without that folder.
        """
        name = src.name if filename is None else _check_filename(filename)
        if not os.path.lexists(src):
            raise NotFound(f"no such file or folder: {src}", field="path")
        staged = self._new_staging()
        try:
            if src.is_dir():
                _copy_tree(src, staged)
            elif not src.is_file():
                raise Invalid(f"{src} is neither a regular file nor a folder", field="path")
            elif is_archive(Path(name)):
                safe_extract(
                    src,
                    staged,
                    limits=self.limits,
                    max_bytes=self.max_bytes,
                    max_entries=self.max_entries,
                    name=name,
                )
                _unwrap_single_folder(staged)
            else:
                shutil.copyfile(src, staged / name)
            digest = sha256_tree(staged)
            if digest.files == 0:
                raise Invalid(f"{name} holds no files: a model needs at least one", field="path")
            return StagedModel(path=staged, digest=digest, framework_guess=detect_framework(staged))
        except PermissionError as e:
            _remove_tree(staged)
            why = f"cannot read {e.filename or src}: permission denied"
            raise Invalid(why, field="path") from e
        except BaseException:
            _remove_tree(staged)
            raise

    def commit(self, staged: StagedModel, name: str, version: int) -> Path:
        """Make `staged` the read-only version `name:version`, atomically. Returns its folder."""
        target = self.path_for(name, version)
        self._check_staged(staged.path)
        if not staged.path.is_dir():
            raise NotFound(
                f"staged model {staged.path.name} is gone (committed or discarded already)",
                field="path",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.mkdir()  # claims the version: a second commit of it fails here
        except FileExistsError:
            raise Conflict(
                f"model {name}:{version} already exists in the artifact store", field="version"
            ) from None
        try:
            _chmod_tree(staged.path, file_mode=_READ_ONLY_FILE, dir_mode=None)
            staged.path.rename(target)  # replaces the empty folder claimed above
        except BaseException:
            target.rmdir()
            _chmod_tree(staged.path, file_mode=_FILE_MODE, dir_mode=None)
            raise
        _chmod_tree(target, file_mode=None, dir_mode=_READ_ONLY_DIR)
        return target

    def discard(self, staged: StagedModel) -> None:
        """Delete a staged model that will not be committed; a no-op if it is gone."""
        self._check_staged(staged.path)
        _remove_tree(staged.path)

    # ------------------------------------------------------------------ committed versions

    def path_for(self, name: str, version: int) -> Path:
        """Where version `name:version` lives (whether or not it exists). `name` is the
        model's key: `iris`, or `team.iris` in project team (`core.access.endpoint_key`)."""
        project, bare = split_key(name)
        check_project(project, "project")
        check_name(bare, "name")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise Invalid(
                f"model version must be a positive integer, not {version!r}", field="version"
            )
        return self.models_dir / name / str(version)

    def locate(self, name: str, version: int) -> Path:
        """The folder of an existing version; NotFound if it has no files here."""
        path = self.path_for(name, version)
        if not path.is_dir():
            raise NotFound(
                f"model {name}:{version} has no files in the artifact store ({path})",
                field="model",
            )
        return path

    def remove(self, name: str, version: int) -> None:
        """Delete version `name:version`'s files; a no-op if they are gone already."""
        path = self.path_for(name, version)
        if not os.path.lexists(path):
            return
        # Move it out of models/ in one rename, so it is never seen half-deleted.
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        trash = self.staging_dir / f".trash-{name}-{version}-{secrets.token_hex(4)}"
        path.chmod(_WRITABLE_DIR)  # renaming a folder updates its '..' entry
        try:
            path.rename(trash)
        except FileNotFoundError:
            return  # removed by someone else meanwhile
        _remove_tree(trash)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the model's folder, once its last version is gone

    # ------------------------------------------------------------------ internals

    def _new_staging(self) -> Path:
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="stage-", dir=self.staging_dir))
        path.chmod(_WRITABLE_DIR)
        return path

    def _check_staged(self, path: Path) -> None:
        """Refuse to commit or delete anything but a folder this store staged."""
        if path.parent.resolve() != self.staging_dir.resolve() or not path.name.startswith(
            "stage-"
        ):
            raise Invalid(f"{path} is not a staged model of this artifact store", field="path")


def _check_filename(name: str) -> str:
    if (
        not name
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
        or len(name.encode("utf-8", "surrogateescape")) > 255
    ):
        raise Invalid(f"{name!r} is not a valid file name", field="file")
    return name


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy the regular files of `src` (symlinks and special files are refused)."""
    for rel, file in list_files(src):
        target = dest.joinpath(*rel.split("/"))
        target.parent.mkdir(mode=_WRITABLE_DIR, parents=True, exist_ok=True)
        shutil.copyfile(file, target, follow_symlinks=False)
        target.chmod(_FILE_MODE)


def _unwrap_single_folder(path: Path) -> None:
    """If `path` holds exactly one entry and it is a folder, move its content up."""
    entries = list(path.iterdir())
    if len(entries) != 1 or entries[0].is_symlink() or not entries[0].is_dir():
        return
    inner = entries[0].rename(path / f".unwrap-{secrets.token_hex(4)}")
    for child in list(inner.iterdir()):
        child.rename(path / child.name)
    inner.rmdir()


def _chmod_tree(path: Path, *, file_mode: int | None, dir_mode: int | None) -> None:
    """Set modes below and including `path`; folders are changed after their content."""
    for folder, _dirs, files in os.walk(path, topdown=False):
        if file_mode is not None:
            for f in files:
                os.chmod(os.path.join(folder, f), file_mode)
        if dir_mode is not None:
            os.chmod(folder, dir_mode)


def _remove_tree(path: Path) -> None:
    """Delete a folder even if it was made read-only; a no-op if it is gone."""
    if not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        for folder, _dirs, _files in os.walk(path):
            if not stat.S_IMODE(os.lstat(folder).st_mode) & stat.S_IWUSR:
                os.chmod(folder, _WRITABLE_DIR)
        shutil.rmtree(path)
    else:
        path.unlink()
