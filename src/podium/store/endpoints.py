"""Endpoints and their revisions.

An endpoint row holds the current spec, status and target revision; each revision row is
an immutable snapshot (spec + resolved model ref) written when a change needs new replicas.
Deciding *whether* a change needs a revision is the caller's business (see
`core.spec.REVISION_FIELDS`); this module only keeps the rows consistent.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.core.access import endpoint_key
from podium.core.bounds import STORED
from podium.core.clock import Clock, SystemClock
from podium.core.errors import Conflict, Invalid, NotFound
from podium.core.phases import EndpointStatus, check_transition
from podium.core.spec import EndpointSpec
from podium.store.locks import LockSpace, lock_name
from podium.store.projects import ProjectRepo
from podium.store.records import EndpointRecord, RevisionRecord
from podium.store.spec_cache import SpecCache, SpecKey
from podium.store.tables import (
    CallbackKeyRow,
    EndpointMemoryRow,
    EndpointRow,
    EventRow,
    MetricPointRow,
    ReplicaRow,
    RevisionRow,
)


def _record(row: EndpointRow) -> EndpointRecord:
    return EndpointRecord(
        name=row.name,
        spec=EndpointSpec.model_validate(row.spec, context=STORED),
        status=EndpointStatus(row.status),
        status_reason=row.status_reason,
        revision=row.revision,
        model_ref=row.model_ref,
        desired_replicas=row.desired_replicas,
        created_at=row.created_at,
        updated_at=row.updated_at,
        generation=row.generation,
        project=row.project,
    )


def _revision(row: RevisionRow) -> RevisionRecord:
    return RevisionRecord(
        endpoint=row.endpoint,
        number=row.number,
        model_ref=row.model_ref,
        spec=EndpointSpec.model_validate(row.spec, context=STORED),
        created_at=row.created_at,
    )


def _not_found(name: str) -> NotFound:
    return NotFound(f"endpoint {name!r} not found", field="name")


def _check_desired(desired: int) -> None:
    if desired < 0:
        raise Invalid(
            f"desired replicas must be 0 or more, not {desired}", field="desired_replicas"
        )


# The columns a list reads besides the spec (which comes from the `SpecCache`), in the
# order `EndpointRepo.list` unpacks them.
_LISTED = (
    EndpointRow.name,
    EndpointRow.project,
    EndpointRow.status,
    EndpointRow.status_reason,
    EndpointRow.revision,
    EndpointRow.model_ref,
    EndpointRow.desired_replicas,
    EndpointRow.generation,
    EndpointRow.created_at,
    EndpointRow.updated_at,
)
_STATUSES = {s.value: s for s in EndpointStatus}  # a dict look-up, not an enum call, a row
_SPECS_PER_QUERY = 500  # names in one `IN (…)` of the specs a list had not parsed yet


class EndpointRepo:
    def __init__(
        self,
        session: Session,
        clock: Clock | None = None,
        specs: SpecCache | None = None,
        *,
        keep_specs: bool = True,
    ) -> None:
        self._s = session
        self._clock = clock or SystemClock()
        self._specs = SpecCache() if specs is None else specs  # the Database's, shared
        # Only a read-only unit of work adds to the shared cache: what a writing one reads
        # may be its own uncommitted spec, which a rollback would leave behind under a
        # generation another server may then commit with another spec.
        self._keep_specs = keep_specs

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> EndpointRecord:
        row = self._s.get(EndpointRow, name)
        if row is None:
            raise _not_found(name)
        return _record(row)

    def exists(self, name: str) -> bool:
        """Whether the endpoint (its key) has a row (being deleted counts)."""
        return self._s.get(EndpointRow, name) is not None

    def list(
        self,
        *,
        status: EndpointStatus | None = None,
        labels: Mapping[str, str] | None = None,
        name_contains: str | None = None,
        projects: Collection[str] | None = None,
    ) -> builtins.list[EndpointRecord]:
        """Endpoints ordered by key, filtered by status, `labels` (every one must match),
        a substring of the (bare) name (matched literally: `%` and `_` are not wildcards)
        and the projects they belong to (all when None)."""
        stmt = select(*_LISTED).order_by(EndpointRow.name)
        if status is not None:
            stmt = stmt.where(EndpointRow.status == status.value)
        if projects is not None:
            stmt = stmt.where(EndpointRow.project.in_(sorted(projects)))
        if name_contains:
            part = name_contains.lower()
            stmt = stmt.where(EndpointRow.name.contains(part, autoescape=True))
        # A Core execution on the session's connection (same transaction; flushed first,
        # as the ORM's autoflush would): the ORM's result layer added a third to reading
        # 1,000 rows, and the rows are unpacked by position (a named attribute costs a
        # look-up per field and row).
        self._s.flush()
        rows = self._s.connection().execute(stmt).tuples().all()
        specs = self._parsed_specs([(r[0], r[8], r[7]) for r in rows])
        records = [
            EndpointRecord(
                name,
                spec,
                _STATUSES[status_value],
                reason,
                revision,
                model_ref,
                desired,
                created_at,
                updated_at,
                generation,
                project,
            )
            for (
                name,
                project,
                status_value,
                reason,
                revision,
                model_ref,
                desired,
                generation,
                created_at,
                updated_at,
            ) in rows
            if (spec := specs.get(name)) is not None
        ]
        if name_contains:
            records = [r for r in records if name_contains.lower() in r.bare_name]
        if labels:
            wanted = labels.items()
            records = [r for r in records if wanted <= r.spec.labels.items()]
        return records

    def _parsed_specs(self, keys: builtins.list[SpecKey]) -> dict[str, EndpointSpec]:
        """Endpoint key → its parsed spec: from the cache, else read (only the specs not
        parsed yet, a few hundred names a query) and parsed once, cached under the identity
        the second read saw. Between the two reads PostgreSQL's read committed may see a
        newer spec (the record gets it, as a later read would) or none (the endpoint was
        deleted: it is left out of the list)."""
        specs: dict[str, EndpointSpec] = {}
        missing: dict[str, SpecKey] = {}
        for key in keys:
            spec = self._specs.get(key)
            if spec is None:
                missing[key[0]] = key
            else:
                specs[key[0]] = spec
        names = sorted(missing)
        for i in range(0, len(names), _SPECS_PER_QUERY):
            chunk = names[i : i + _SPECS_PER_QUERY]
            stmt = select(
                EndpointRow.name, EndpointRow.created_at, EndpointRow.generation, EndpointRow.spec
            ).where(EndpointRow.name.in_(chunk))
            for name, created_at, generation, doc in self._s.execute(stmt):
                spec = EndpointSpec.model_validate(doc, context=STORED)
                if self._keep_specs:
                    self._specs.put((name, created_at, generation), spec)
                specs[name] = spec
        return specs

    def spec_json(self, rec: EndpointRecord) -> bytes:
        """`rec.spec` as JSON, dumped once per stored spec when `rec` comes from a list
        (the `SpecCache` keeps it with the parsed spec it shares)."""
        return self._specs.json((rec.name, rec.created_at, rec.generation), rec.spec)

    def revisions(self, name: str) -> builtins.list[RevisionRecord]:
        """Every revision of the endpoint, oldest first."""
        self._require(name)
        stmt = select(RevisionRow).where(RevisionRow.endpoint == name).order_by(RevisionRow.number)
        return [_revision(r) for r in self._s.scalars(stmt)]

    def revision(self, name: str, number: int) -> RevisionRecord:
        row = self._s.get(RevisionRow, (name, number))
        if row is None:
            self._require(name)
            raise NotFound(f"endpoint {name!r} has no revision {number}", field="revision")
        return _revision(row)

    def endpoints_using(self, model_name: str, version: int | None = None) -> builtins.list[str]:
        """Names of endpoints that serve `model_name:version` (any version of `model_name`
        when `version` is None), sorted: by their current revision, or by replicas of an
        older revision still running (a rollout in progress)."""

        def matches(ref: Any) -> Any:
            if version is None:
                return ref.startswith(f"{model_name}:", autoescape=True)
            return ref == f"{model_name}:{version}"

        current = select(EndpointRow.name).where(matches(EndpointRow.model_ref))
        running = (
            select(ReplicaRow.endpoint)
            .join(
                RevisionRow,
                (RevisionRow.endpoint == ReplicaRow.endpoint)
                & (RevisionRow.number == ReplicaRow.revision),
            )
            .where(matches(RevisionRow.model_ref))
        )
        names = set(self._s.scalars(current)) | set(self._s.scalars(running))
        return sorted(names)

    # ------------------------------------------------------------------ writes

    def create(
        self,
        spec: EndpointSpec,
        *,
        model_ref: str,
        status: EndpointStatus,
        desired_replicas: int,
    ) -> EndpointRecord:
        """Write the endpoint (under its key, in `spec.project`, which must exist: NotFound,
        field "project"; held against a concurrent delete) and its revision 1 (same spec and
        model ref)."""
        _check_desired(desired_replicas)
        ProjectRepo(self._s).hold(spec.project)  # its lock first (see `locks`)
        name = endpoint_key(spec.project, spec.name)
        lock_name(self._s, LockSpace.ENDPOINT, name)
        if self._s.get(EndpointRow, name, populate_existing=True) is not None:
            raise self._exists(name)
        now = self._clock.now()
        doc = spec.model_dump(mode="json")
        row = EndpointRow(
            name=name,
            project=spec.project,
            spec=doc,
            status=status.value,
            status_reason=None,
            revision=1,
            model_ref=model_ref,
            desired_replicas=desired_replicas,
            generation=1,
            created_at=now,
            updated_at=now,
        )
        try:
            with self._s.begin_nested():
                self._s.add(row)
                self._s.flush()
                self._s.add(
                    RevisionRow(
                        endpoint=name, number=1, model_ref=model_ref, spec=doc, created_at=now
                    )
                )
        except IntegrityError:
            raise self._exists(name) from None
        return _record(row)

    def update_spec(
        self,
        name: str,
        spec: EndpointSpec,
        *,
        new_revision_model_ref: str | None,
        desired_replicas: int,
    ) -> EndpointRecord:
        """Store a new spec (bumping generation). With `new_revision_model_ref`, also write
        the next revision (this spec, that model ref) and make it the current one."""
        if endpoint_key(spec.project, spec.name) != name:
            raise Invalid(f"the spec names {spec.name!r}, not endpoint {name!r}", field="name")
        _check_desired(desired_replicas)
        row = self._load_for_update(name)
        now = self._clock.now()
        doc = spec.model_dump(mode="json")
        if new_revision_model_ref is not None:
            latest = self._s.scalar(
                select(func.max(RevisionRow.number)).where(RevisionRow.endpoint == name)
            )
            number = (latest or 0) + 1
            self._s.add(
                RevisionRow(
                    endpoint=name,
                    number=number,
                    model_ref=new_revision_model_ref,
                    spec=doc,
                    created_at=now,
                )
            )
            row.revision = number
            row.model_ref = new_revision_model_ref
        row.spec = doc
        self._specs.forget(name)
        row.desired_replicas = desired_replicas
        row.generation += 1
        row.updated_at = now
        self._s.flush()
        return _record(row)

    def set_status(self, name: str, status: EndpointStatus, reason: str | None = None) -> bool:
        """Move to `status` (Conflict if `core.phases` forbids it). False, and nothing
        written, when both status and reason are already those."""
        row = self._load_for_update(name)
        old = EndpointStatus(row.status)
        if old == status and row.status_reason == reason:
            return False
        check_transition(old, status)
        row.status = status.value
        row.status_reason = reason
        row.updated_at = self._clock.now()
        self._s.flush()
        return True

    def set_desired(self, name: str, desired: int) -> bool:
        """Set the desired replica count; False when unchanged, else bumps generation."""
        _check_desired(desired)
        row = self._load_for_update(name)
        if row.desired_replicas == desired:
            return False
        row.desired_replicas = desired
        row.generation += 1
        row.updated_at = self._clock.now()
        self._s.flush()
        return True

    def delete(self, name: str) -> None:
        """Remove the endpoint with its revisions, replica rows, events, metrics history
        and the controller's memory of it."""
        self._load_for_update(name)
        self._specs.forget(name)
        self._s.execute(delete(EndpointMemoryRow).where(EndpointMemoryRow.endpoint == name))
        self._s.execute(delete(ReplicaRow).where(ReplicaRow.endpoint == name))
        self._s.execute(delete(EventRow).where(EventRow.endpoint == name))
        self._s.execute(delete(MetricPointRow).where(MetricPointRow.endpoint == name))
        self._s.execute(delete(RevisionRow).where(RevisionRow.endpoint == name))
        self._s.execute(delete(CallbackKeyRow).where(CallbackKeyRow.endpoint == name))
        self._s.execute(delete(EndpointRow).where(EndpointRow.name == name))

    # ------------------------------------------------------------------ helpers

    def _require(self, name: str) -> None:
        if self._s.get(EndpointRow, name) is None:
            raise _not_found(name)

    def _load_for_update(self, name: str) -> EndpointRow:
        """The endpoint's row, freshly read under its lock (so no update is lost)."""
        lock_name(self._s, LockSpace.ENDPOINT, name)
        row = self._s.get(EndpointRow, name, populate_existing=True, with_for_update=True)
        if row is None:
            raise _not_found(name)
        return row

    @staticmethod
    def _exists(name: str) -> Conflict:
        return Conflict(f"endpoint {name!r} already exists", field="name")
