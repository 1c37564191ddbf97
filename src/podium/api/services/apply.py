"""`POST /apply`: converge the server to a list of documents, or say what that would do.

A pass plans every document first (one read-only unit of work: nothing changes when any
document is wrong), then, unless it is a dry run, carries the plan out through the services
users call one by one (projects, secrets, `EndpointService.create/update/delete`): the same
checks, events and quotas as a hand-made change. Projects go first, then secrets, then
endpoints, then what prune deletes. Carrying out is not one transaction: a failure midway
(e.g. a quota) leaves the changes before it made, and the next apply goes on from there.

An endpoint document is the whole spec: a field it leaves out goes back to its default.
An apply never escalates: each document needs `deploy` in its project (a project document:
admin on every project), as the route that makes the same change one by one would.
Each change carried out leaves an audit row of its own, filed under its project
(`endpoint.create`, `secret.set`, …); the request's row (`apply.create`) is the envelope.
With `expect`, the plan must be the one the caller was shown (its fingerprint), else 409.
A model the client pushes (`pending_models`, with its framework) is planned as "(its next
version)" both in the dry run and in the apply after the push, whose `pushed_models` must
still be the latest versions: so the client can send the dry run's fingerprint with it.
A secret's stored value is compared in constant time; a dry run that answers `no_change`
for a guessed value tells a deploy holder nothing new: deploy can already read a project's
secrets through a replica's environment.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import ValidationError

from podium.api.deps import ApiContext
from podium.api.services import projects as project_service
from podium.api.services.checks import check_runnable, resolve_model
from podium.api.services.endpoints import EndpointService, target_model, with_framework
from podium.core.access import Principal, Scope, endpoint_key
from podium.core.apply_schemas import (
    DEFAULT_MANAGER,
    PLAN_CHANGED,
    PRUNE_NEEDS_MANAGER,
    SENSITIVE,
    ApplyRequest,
    Change,
    ChangeAction,
    FieldChange,
    Plan,
    field_changes,
    plan_fingerprint,
)
from podium.core.errors import Conflict, Forbidden, Invalid, NotFound, PodiumError
from podium.core.manifest import (
    MANAGED_BY_LABEL,
    Document,
    DocumentKind,
    EndpointDocument,
    ModelDocument,
    ProjectDocument,
    SecretDocument,
    parse_documents,
)
from podium.core.phases import EndpointStatus
from podium.core.quotas import QUOTA_NAMES
from podium.core.schemas import ProjectCreate, ProjectUpdate
from podium.core.spec import (
    REVISION_FIELDS,
    EndpointCreate,
    EndpointSpec,
    EndpointUpdate,
    RepoRef,
    parse_model_ref,
)
from podium.store import UnitOfWork
from podium.store.secret_box import SecretBox

_A = ChangeAction
_SERVER_MADE = {"name", "project"}  # the key, not a field that changes
_AUDIT_VERB = {_A.CREATE: "create", _A.UPDATE_REVISION: "update", _A.UPDATE_IN_PLACE: "update"}

AuditSink = Callable[[Change, dict[str, Any] | None], None]  # a change carried out, its before


@dataclass
class _Step:
    change: Change
    run: Callable[[], object] | None = None  # None: nothing to do
    where: str = ""  # the document, named in an error while carrying it out
    before: dict[str, Any] | None = None  # an endpoint's spec before the change (audit)

    def at(self, index: int) -> _Step:
        self.where = f"documents[{index}]"
        return self


@dataclass(frozen=True)
class _Planned:
    """What this apply creates before its endpoints: projects, and secrets (project, name)."""

    projects: set[str]
    secrets: set[tuple[str, str]]


class ApplyService:
    def __init__(self, ctx: ApiContext, caller: Principal, audit: AuditSink | None = None) -> None:
        self._ctx = ctx
        self._caller = caller
        self._audit = audit
        self._endpoints = EndpointService(ctx.settings, ctx.db, ctx.wake, ctx.routing)

    def apply(
        self, request: ApplyRequest, *, dry_run: bool, prune: bool, expect: str | None = None
    ) -> Plan:
        if prune and request.managed_by is None:
            raise Invalid(PRUNE_NEEDS_MANAGER, field="managed_by")
        documents = parse_documents(request.documents)
        for i, doc in enumerate(documents):
            self._check_access(doc, i)
        for entry in [*request.pending_models, *request.pushed_models]:  # the client pushes
            project = entry.partition("/")[0]
            if not self._caller.may(Scope.DEPLOY, project):
                raise Forbidden(
                    f"token {self._caller.name!r} ({self._caller.token_id}) lacks scope "
                    f"'deploy' on project {project!r} (pending model {entry!r})",
                    field="scope",
                )
        with self._ctx.db.unit_of_work(read_only=True) as uow:
            _check_pushed(uow, request)
            steps = self._plan(uow, documents, request)
            if prune:
                assert request.managed_by is not None
                steps += self._plan_prune(uow, documents, request.managed_by)
        changes = [s.change for s in steps]
        if expect is not None and plan_fingerprint(changes) != expect:
            raise Conflict(PLAN_CHANGED, field="expect")
        if not dry_run:
            for step in steps:
                if step.run is not None:
                    with _naming_field(step.where):
                        step.run()
                    if self._audit is not None:
                        self._audit(step.change, step.before)
        return Plan.of(changes, dry_run=dry_run)

    def _plan(
        self, uow: UnitOfWork, documents: list[Document], request: ApplyRequest
    ) -> list[_Step]:
        """A step per document: projects first, then secrets, then endpoints (which may
        name a project or a secret this apply creates)."""
        planned = _Planned(set(), set())
        steps: list[_Step] = []
        for kind in (ProjectDocument, SecretDocument, EndpointDocument):
            for i, doc in enumerate(documents):
                if not isinstance(doc, kind):
                    continue
                with _naming(i):
                    if isinstance(doc, ProjectDocument):
                        step = self._plan_project(uow, doc)
                    elif isinstance(doc, SecretDocument):
                        step = self._plan_secret(uow, doc, planned.projects)
                    else:
                        assert isinstance(doc, EndpointDocument)
                        step = self._plan_endpoint(uow, doc, request, planned)
                if step.change.action is _A.CREATE:
                    if isinstance(doc, ProjectDocument):
                        planned.projects.add(doc.name)
                    elif isinstance(doc, SecretDocument):
                        planned.secrets.add((doc.project, doc.name))
                step.change.fields.sort(key=lambda f: f.field)
                steps.append(step.at(i))
        return steps

    # ------------------------------------------------------------------ access

    def _check_access(self, doc: Document, index: int) -> None:
        caller = self._caller
        if isinstance(doc, ModelDocument):
            raise Invalid(
                "a model document is pushed by the client (`podium apply`, "
                "`PodiumClient.apply`): send the endpoints that use it",
                field=f"documents[{index}].kind",
            )
        if isinstance(doc, ProjectDocument):
            if not caller.may(Scope.ADMIN) or caller.projects is not None:
                raise Forbidden(
                    f"token {caller.name!r} ({caller.token_id}) lacks scope 'admin' on every "
                    f"project: a project document needs it (documents[{index}])",
                    field="scope",
                )
            return
        if not caller.may(Scope.DEPLOY, doc.project):
            raise Forbidden(
                f"token {caller.name!r} ({caller.token_id}) lacks scope 'deploy' on project "
                f"{doc.project!r} (documents[{index}])",
                field="scope",
            )

    # ------------------------------------------------------------------ projects

    def _plan_project(self, uow: UnitOfWork, doc: ProjectDocument) -> _Step:
        want = {"description": doc.description, "quotas": doc.quotas.model_dump(mode="json")}
        settings, db = self._ctx.settings, self._ctx.db
        try:
            rec = uow.projects.get(doc.name)
        except NotFound:
            body = ProjectCreate(name=doc.name, description=doc.description, quotas=doc.quotas)
            change = _change(_A.CREATE, DocumentKind.PROJECT, doc.name, doc.name, None, want)
            return _Step(change, lambda: project_service.create(db, settings, body))
        have = {
            "description": rec.description,
            "quotas": {q: getattr(rec.quotas, q) for q in QUOTA_NAMES},
        }
        fields = field_changes(have, want)
        action = _A.UPDATE_IN_PLACE if fields else _A.NO_CHANGE
        change = Change(
            action=action, kind=DocumentKind.PROJECT, name=doc.name, project=doc.name, fields=fields
        )
        update = ProjectUpdate.model_validate(want)  # every field set: the document replaces
        run = (lambda: project_service.update(db, settings, doc.name, update)) if fields else None
        return _Step(change, run)

    # ------------------------------------------------------------------ secrets

    def _plan_secret(
        self, uow: UnitOfWork, doc: SecretDocument, planned_projects: set[str]
    ) -> _Step:
        value = doc.value
        if value is None:
            raise Invalid(
                "the client resolves `from_env`/`from_file` and sends the `value`", field="value"
            )
        box = SecretBox(self._ctx.settings.secret_key_path)
        kind, project, name = DocumentKind.SECRET, doc.project, doc.name
        exists = doc.project not in planned_projects and uow.secrets.exists(project, name)
        if exists and _same(
            box.decrypt(uow.secrets.get_ciphertext(project, name), name=name), value
        ):
            return _Step(Change(action=_A.NO_CHANGE, kind=kind, name=name, project=project))
        if not exists and doc.project not in planned_projects:
            uow.projects.require(project)
        action = _A.UPDATE_IN_PLACE if exists else _A.CREATE
        old = SENSITIVE if exists else None
        change = Change(
            action=action,
            kind=kind,
            name=name,
            project=project,
            fields=[FieldChange(field="value", old=old, new=SENSITIVE)],
        )
        db, by = self._ctx.db, self._caller.token_id

        def put() -> None:
            with db.unit_of_work() as w:
                ciphertext = box.encrypt(value, may_create=not w.secrets.any())
                w.secrets.put(project, name, ciphertext, by=by)

        return _Step(change, put)

    # ------------------------------------------------------------------ endpoints

    def _plan_endpoint(
        self,
        uow: UnitOfWork,
        doc: EndpointDocument,
        request: ApplyRequest,
        planned: _Planned,
    ) -> _Step:
        create = doc.create()
        labels = {**create.labels, MANAGED_BY_LABEL: request.managed_by or DEFAULT_MANAGER}
        create = create.model_copy(update={"labels": labels})
        ref = parse_model_ref(create.model)
        # a model the client pushes a new version of (not stored yet in a dry run; in the
        # apply after the push, planned the same way so that the plan is the one confirmed)
        pending = (
            isinstance(ref, RepoRef)
            and ref.version is None
            and f"{doc.project}/{ref.name}" in request.pending_models
        )
        pending_framework = (
            request.pending_models.get(f"{doc.project}/{ref.name}")
            if pending and isinstance(ref, RepoRef)
            else None
        )
        key = endpoint_key(doc.project, doc.name)
        kind = DocumentKind.ENDPOINT
        rec = uow.endpoints.get(key) if uow.endpoints.exists(key) else None
        if rec is not None and rec.status is EndpointStatus.DELETING:
            raise Conflict(
                f"endpoint {doc.name!r} of project {doc.project!r} is being deleted: apply "
                "again once it is gone",
                field="name",
            )
        if rec is None:
            new_project = doc.project in planned.projects
            if not new_project:
                uow.projects.require(doc.project)  # named as such, not as a missing model
            if pending or new_project:  # the model: pushed first, or from hf://
                framework = create.framework or pending_framework
                self._check(uow, _framed(create, framework) if framework else create, planned)
                if not pending and isinstance(ref, RepoRef):
                    raise NotFound(  # no model is in a project that is not there yet
                        f"model {ref.name!r} is not in project {doc.project!r}, which this "
                        "apply creates: add a model document for it",
                        field="model",
                    )
            else:
                self._check(uow, with_framework(uow, create), planned, resolve=True)
            shown = create.model_dump(mode="json", exclude_defaults=True)
            shown.pop("name", None)
            shown.pop("project", None)
            change = _change(_A.CREATE, kind, doc.name, doc.project, None, shown)
            return _Step(change, lambda: self._endpoints.create(create))
        if pending:
            new = _framed(create, create.framework or pending_framework or rec.spec.framework)
            self._check(uow, new, planned)
            model_ref = f"{ref} (its next version)"
        else:
            new = with_framework(uow, create)
            self._check(uow, new, planned, resolve=True)
            model_ref = target_model(uow, rec, new)
        old_json = rec.spec.model_dump(mode="json", exclude=_SERVER_MADE)
        new_json = new.model_dump(mode="json", exclude=_SERVER_MADE)
        fields = field_changes(old_json, new_json)
        if model_ref != rec.model_ref:
            fields.append(FieldChange(field="model_ref", old=rec.model_ref, new=model_ref))
        if not fields:
            return _Step(Change(action=_A.NO_CHANGE, kind=kind, name=doc.name, project=doc.project))
        top = {f.field.split(".", 1)[0] for f in fields}
        revision = model_ref != rec.model_ref or any(
            f in REVISION_FIELDS and f != "model" for f in top
        )
        action = _A.UPDATE_REVISION if revision else _A.UPDATE_IN_PLACE
        change = Change(action=action, kind=kind, name=doc.name, project=doc.project, fields=fields)
        update = EndpointUpdate.model_validate(new.model_dump(exclude=_SERVER_MADE))
        before = rec.spec.model_dump(mode="json")
        return _Step(change, lambda: self._endpoints.update(key, update), before=before)

    def _check(
        self, uow: UnitOfWork, spec: EndpointCreate, planned: _Planned, *, resolve: bool = False
    ) -> None:
        """What create and update check (`checks.check_runnable`), a secret this apply
        creates counting as there; with `resolve`, the model too (not when the client pushes
        it first, or when its project is created by this apply)."""
        known = {name for project, name in planned.secrets if project == spec.project}
        check_runnable(uow, self._ctx.settings, spec, known_secrets=known)
        if resolve:
            resolve_model(uow, spec.model, spec.project)

    def _plan_prune(self, uow: UnitOfWork, documents: list[Document], manager: str) -> list[_Step]:
        """Endpoints labelled `managed-by: manager` in the projects the documents touch
        that no document names: deleted. Nothing else, ever."""
        touched = {d.name if isinstance(d, ProjectDocument) else d.project for d in documents}
        named = {
            endpoint_key(d.project, d.name) for d in documents if isinstance(d, EndpointDocument)
        }
        steps: list[_Step] = []
        records = uow.endpoints.list(labels={MANAGED_BY_LABEL: manager}, projects=touched)
        for rec in records:
            if rec.name in named or rec.status is EndpointStatus.DELETING:
                continue
            change = Change(
                action=_A.DELETE,
                kind=DocumentKind.ENDPOINT,
                name=rec.bare_name,
                project=rec.project,
            )
            before = rec.spec.model_dump(mode="json")
            steps.append(_Step(change, partial(self._endpoints.delete, rec.name), before=before))
        return steps


def _check_pushed(uow: UnitOfWork, request: ApplyRequest) -> None:
    """Each version the client pushed for this apply is pending and still its model's
    latest: else the endpoints would move to another one than the plan confirmed."""
    for key, version in request.pushed_models.items():
        field = f"pushed_models.{key}"
        if key not in request.pending_models:
            raise Invalid(f"{key} is not in pending_models", field=field)
        project, _, name = key.partition("/")
        latest = uow.models.get(endpoint_key(project, name)).version
        if latest != version:
            raise Conflict(
                f"model {key}: its latest version is {latest}, not version {version} that "
                "this apply pushed (another push came in between): run plan again",
                field=field,
            )


def _framed(create: EndpointCreate, framework: str) -> EndpointSpec:
    """`create` with `framework` where it names none, refused (422) as the model version's
    framework would be on create (e.g. an exec probe on a pending sklearn model)."""
    try:
        return create.with_framework(framework)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "framework"
        raise Invalid(f"with framework {framework}: {first['msg']}", field=field) from None


def _same(stored: str, given: str) -> bool:
    """A secret's stored value is `given` (constant time: no timing tells how much of a
    guess was right)."""
    return hmac.compare_digest(stored.encode(), given.encode())


def audit_action(change: Change) -> str:
    """`endpoint.create`, `secret.set`, `project.update`, `endpoint.delete`: the action a
    change carried out is audited as, the one the per-object route records."""
    if change.kind is DocumentKind.SECRET:
        return "secret.set"
    verb = "delete" if change.action is _A.DELETE else _AUDIT_VERB[change.action]
    return f"{change.kind.value}.{verb}"


def _change(
    action: ChangeAction, kind: DocumentKind, name: str, project: str, old: Any, new: Any
) -> Change:
    return Change(
        action=action, kind=kind, name=name, project=project, fields=field_changes(old, new)
    )


@contextmanager
def _naming(index: int) -> Iterator[None]:
    with _naming_field(f"documents[{index}]"):
        yield


@contextmanager
def _naming_field(where: str) -> Iterator[None]:
    """Errors of a document name it: `documents[2].model`."""
    try:
        yield
    except PodiumError as e:
        if where and not (e.field or "").startswith("documents["):
            e.field = f"{where}.{e.field}" if e.field else where
        raise
