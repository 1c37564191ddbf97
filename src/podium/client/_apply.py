"""`PodiumClient.apply` / `export`: the client side of `POST /apply`.

The client does what the server cannot: it reads the user's disk. A `model` document is
pushed from its `path` when the content differs from the model's latest version (the
digests are compared first, so an unchanged folder is not uploaded), and only once a server
dry run of the whole manifest passed (so a refused apply leaves no version behind); a
`secret` document's
`from_env` / `from_file` is resolved here and its value travels in the request only. The
rest goes to the server, which plans and converges (`api/services/apply.py`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from podium.client._access import project_params
from podium.core.apply_schemas import (
    PLAN_CHANGED,
    Change,
    ChangeAction,
    FieldChange,
    Plan,
    plan_fingerprint,
)
from podium.core.errors import Conflict, Invalid, NotFound, PodiumError
from podium.core.manifest import (
    DocumentKind,
    ModelDocument,
    SecretDocument,
    document_dict,
    parse_documents,
)
from podium.core.schemas import ModelPublic, ModelVersionPushed

if TYPE_CHECKING:
    import httpx

# Files the server unpacks before hashing: their content digest is known only after a push.
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")  # as unpack.py
ARCHIVE_DIGEST = "(an archive: compared when pushed)"
_CHUNK = 1024 * 1024
_INDEX = re.compile(r"documents\[(\d+)\]")


class ApplyMethods:
    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def model(self, name: str, *, project: str | None = None) -> ModelPublic: ...
        def push_model(
            self,
            path: str | Path,
            name: str,
            *,
            framework: str | None = None,
            project: str | None = None,
        ) -> ModelVersionPushed: ...

    def apply(
        self,
        documents: Sequence[Mapping[str, Any]],
        *,
        dry_run: bool = False,
        prune: bool = False,
        managed_by: str | None = None,
        base_dir: str | Path | None = None,
        expect: str | None = None,
    ) -> Plan:
        """Converge the server to `documents` (dicts as in YAML: endpoints, models, secrets,
        projects) and return the plan carried out; `dry_run`: the plan only. Relative
        `path`/`from_file` are read from `base_dir` (default: the working directory).

        `prune` needs `managed_by` (whose endpoints may be deleted; the label defaults to
        `podium-apply` otherwise). `expect`: the `fingerprint` of a plan shown before (the
        server's changes and the models' digests); refused (`Conflict`) when the plan
        differs now, before any push, or after the pushes (the server's changes, a pushed
        version no longer the latest, a pushed content not the one planned: the version
        stays, no endpoint moves). A model is pushed only after a server dry run of the
        whole manifest passed (its checks, with the model document's framework, and the
        caller's rights), so a refused apply leaves no new model version behind."""
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        parsed = parse_documents(list(documents))
        models: list[tuple[int, ModelDocument]] = []
        body: list[dict[str, Any]] = []
        origin: list[int] = []  # the index in `documents` of each one sent
        for i, doc in enumerate(parsed):
            if isinstance(doc, ModelDocument):
                path = (base / doc.path).expanduser()
                if not path.exists():
                    raise Invalid(f"{path} does not exist", field=f"documents[{i}].path")
                models.append((i, doc))
                continue
            if isinstance(doc, SecretDocument):  # the value, not where it came from
                value = _secret_value(doc, base, i)
                doc = SecretDocument(name=doc.name, project=doc.project, value=value)
            body.append(document_dict(doc))
            origin.append(i)
        request: dict[str, Any] = {"documents": body}
        if managed_by is not None:
            request["managed_by"] = managed_by
        planned = [self._model_change(doc, base) for _, doc in models]
        changing = [
            (doc, change)
            for (_, doc), change in zip(models, planned, strict=True)
            if change.action is not ChangeAction.NO_CHANGE
        ]
        if not dry_run and not changing:  # the server's plan is all: it checks `expect`
            done = self._post_apply(request, origin, dry_run=False, prune=prune, expect=expect)
            return Plan.of(planned + done.changes, dry_run=False, fingerprint=done.fingerprint)
        # the server checks everything before anything is pushed; the models' changes (their
        # digests) are part of the fingerprint the caller confirms
        pending = {f"{doc.project}/{doc.name}": doc.framework for doc, _ in changing}
        request["pending_models"] = pending
        shown = self._post_apply(request, origin, dry_run=True, prune=prune, expect=None)
        fingerprint = plan_fingerprint([c for _, c in changing] + shown.changes)
        if expect is not None and fingerprint != expect:
            raise Conflict(PLAN_CHANGED, field="expect")
        if dry_run:
            return Plan.of(planned + shown.changes, dry_run=True, fingerprint=fingerprint)
        pushed = {id(change): self._push(doc, base, change) for doc, change in changing}
        request["pushed_models"] = {
            f"{c.project}/{c.name}": f.new
            for c in pushed.values()
            for f in c.fields
            if f.field == "version"
        }
        # the plan the dry run showed, with the pushed versions still the latest, or nothing
        done = self._post_apply(
            request, origin, dry_run=False, prune=prune, expect=shown.fingerprint
        )
        carried = [pushed.get(id(change), change) for change in planned]
        return Plan.of(carried + done.changes, dry_run=False, fingerprint=done.fingerprint)

    def _post_apply(
        self,
        request: dict[str, Any],
        origin: list[int],
        *,
        dry_run: bool,
        prune: bool,
        expect: str | None,
    ) -> Plan:
        params: dict[str, Any] = {"dry_run": dry_run, "prune": prune}
        if expect is not None:
            params["expect"] = expect
        try:
            response = self._request("POST", "/apply", params=params, json=request)
        except PodiumError as e:
            raise _renumbered(e, origin) from None
        return Plan.model_validate(response.json())

    def export(self, name: str, project: str | None = None) -> dict[str, Any]:
        """The endpoint as the document `apply` accepts."""
        response = self._request(
            "GET", f"/endpoints/{quote(name, safe='')}/export", params=project_params(project)
        )
        out: dict[str, Any] = response.json()
        return out

    def _model_change(self, doc: ModelDocument, base: Path) -> Change:
        """The model's change, planned from the digests."""
        path = (base / doc.path).expanduser()
        try:
            latest = self.model(doc.name, project=doc.project)
        except NotFound:
            latest = None
        old = None
        if latest is not None:
            old = next((v.sha256 for v in latest.versions if v.version == latest.latest), None)
        new = content_digest(path)
        if old is not None and new == old:
            return _model(ChangeAction.NO_CHANGE, doc, [])
        action = ChangeAction.CREATE if latest is None else ChangeAction.UPDATE_REVISION
        shown = new or ARCHIVE_DIGEST
        return _model(action, doc, [FieldChange(field="sha256", old=old, new=shown)])

    def _push(self, doc: ModelDocument, base: Path, planned: Change) -> Change:
        """Push the model whose change is `planned`, refused (Conflict) when the content
        is not the one planned: before the push (nothing pushed) or after it (a version is
        left, but no endpoint moves to it)."""
        path = (base / doc.path).expanduser()
        want = next(f.new for f in planned.fields if f.field == "sha256")
        if (content_digest(path) or ARCHIVE_DIGEST) != want:
            raise Conflict(_content_changed(doc, "nothing was pushed"), field="sha256")
        pushed = self.push_model(path, doc.name, framework=doc.framework, project=doc.project)
        if want != ARCHIVE_DIGEST and pushed.sha256 != want:
            raise Conflict(
                _content_changed(doc, f"version {pushed.version} was pushed, no endpoint moved"),
                field="sha256",
            )
        fields = [
            FieldChange(field="sha256", old=planned.fields[0].old, new=pushed.sha256),
            FieldChange(field="version", new=pushed.version),
        ]
        return _model(planned.action, doc, fields)


def _content_changed(doc: ModelDocument, outcome: str) -> str:
    return (
        f"model {doc.project}/{doc.name}: the content of {doc.path} changed since the plan "
        f"(a job still writing?): {outcome}; run plan again"
    )


def _renumbered(error: PodiumError, origin: list[int]) -> PodiumError:
    """The server numbers the documents it got (models left out): number them as given."""

    def fix(text: str) -> str:
        return _INDEX.sub(lambda m: f"documents[{origin[int(m.group(1))]}]", text)

    if any(i != j for i, j in enumerate(origin)):
        error.message = fix(error.message)
        error.field = fix(error.field) if error.field else None
    return error


def _model(action: ChangeAction, doc: ModelDocument, fields: list[FieldChange]) -> Change:
    return Change(
        action=action, kind=DocumentKind.MODEL, name=doc.name, project=doc.project, fields=fields
    )


def _secret_value(doc: SecretDocument, base: Path, index: int) -> str:
    if doc.value is not None:
        raise Invalid(
            "a secret's value is never written in a document: use from_env or from_file",
            field=f"documents[{index}].value",
        )
    if doc.from_env is not None:
        value = os.environ.get(doc.from_env)
        if value is None:
            raise Invalid(
                f"environment variable {doc.from_env} is not set",
                field=f"documents[{index}].from_env",
            )
        return value
    if doc.from_file is not None:
        path = (base / doc.from_file).expanduser()
        try:
            return path.read_text().rstrip("\n")
        except OSError as e:
            raise Invalid(
                f"cannot read {path}: {e.strerror or e}", field=f"documents[{index}].from_file"
            ) from None
    raise Invalid("a secret needs from_env or from_file", field=f"documents[{index}]")


def content_digest(path: Path) -> str | None:
    """The sha256 the server records for a model pushed from `path` (`artifacts.hashing`:
    every regular file, in sorted relative path order, as `path\\0size\\0bytes`; a folder
    holding one folder only is that folder; a file is a folder holding it). None for an
    archive, whose content the server unpacks first."""
    if path.is_file():
        if path.name.lower().endswith(ARCHIVE_SUFFIXES):
            return None
        files = [(path.name, path)]
    else:
        entries = list(path.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
            path = entries[0]
        files = sorted(
            (p.relative_to(path).as_posix(), p)
            for p in path.rglob("*")
            if p.is_file() and not p.is_symlink()
        )
    digest = hashlib.sha256()
    for rel, file in files:
        digest.update(f"{rel}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
