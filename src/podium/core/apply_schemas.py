"""What `POST /api/v1/apply` takes and answers: the request and the plan (no I/O).

A plan lists one change per object, each with the fields that differ (`old` → `new`,
dotted paths into the spec). A secret's value is never shown: `SENSITIVE` stands for it.
Its `fingerprint` (a sha256 of the changes' canonical JSON) is what a caller sends back as
`?expect=` to apply exactly the plan it was shown.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from podium.core.manifest import MAX_DOCUMENTS, DocumentKind, RawDocument

DEFAULT_MANAGER = "podium-apply"
PRUNE_NEEDS_MANAGER = "say which manager's endpoints may be pruned: --managed-by NAME"
SENSITIVE = "(sensitive)"
PLAN_CHANGED = (
    "the plan changed since it was shown (another change, a new model version, a model "
    "folder's content, an endpoint made by hand): run plan again"
)


class ChangeAction(StrEnum):
    CREATE = "create"
    UPDATE_REVISION = "update_revision"  # new replicas: a new revision, rolled out
    UPDATE_IN_PLACE = "update_in_place"  # the running replicas stay
    DELETE = "delete"
    NO_CHANGE = "no_change"


def _one_of(schema: dict[str, Any]) -> None:
    """A document is exactly one of the kinds (told apart by `kind`)."""
    items = schema["properties"]["documents"]["items"]
    if "anyOf" in items:
        items["oneOf"] = items.pop("anyOf")


class ApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of)

    documents: list[RawDocument] = Field(  # each checked by `parse_documents`
        default_factory=list,
        max_length=MAX_DOCUMENTS,
        description="endpoint, secret and project documents (model documents: the client)",
    )
    managed_by: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
        description=f"the `managed-by` label set on the endpoints apply makes (default "
        f"{DEFAULT_MANAGER!r}); prune's scope: required with `prune`",
    )
    pending_models: dict[
        Annotated[str, StringConstraints(max_length=200)],
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{1,31}$")] | None,
    ] = Field(
        default_factory=dict,
        max_length=MAX_DOCUMENTS,
        description="PROJECT/NAME: framework (null: not known) of each model the client "
        "pushes a new version of: the endpoints that use its latest version are planned as "
        "moving to '(its next version)' and checked with that framework",
    )
    pushed_models: dict[Annotated[str, StringConstraints(max_length=200)], int] = Field(
        default_factory=dict,
        max_length=MAX_DOCUMENTS,
        description="PROJECT/NAME: version the client pushed for this apply (each one also "
        "in `pending_models`): refused (409) unless it is still the model's latest version",
    )


class FieldChange(BaseModel):
    field: str
    old: Any = None
    new: Any = None


class Change(BaseModel):
    action: ChangeAction
    kind: DocumentKind
    name: str
    project: str
    fields: list[FieldChange] = Field(default_factory=list)


class PlanSummary(BaseModel):
    create: int = 0
    update_revision: int = 0
    update_in_place: int = 0
    delete: int = 0
    no_change: int = 0


class Plan(BaseModel):
    changes: list[Change] = Field(default_factory=list)
    summary: PlanSummary = Field(default_factory=PlanSummary)
    changed: bool = False
    dry_run: bool = True
    fingerprint: str = Field(
        "", description="sha256 of the server's changes: send it as `?expect=` to apply this plan"
    )

    @classmethod
    def of(cls, changes: list[Change], *, dry_run: bool, fingerprint: str | None = None) -> Plan:
        """The plan of `changes`; its fingerprint theirs unless given (the client adds the
        model documents' changes to the server's plan and keeps the server's fingerprint)."""
        counts = {a.value: sum(c.action is a for c in changes) for a in ChangeAction}
        changed = any(c.action is not ChangeAction.NO_CHANGE for c in changes)
        return cls(
            changes=changes,
            summary=PlanSummary(**counts),
            changed=changed,
            dry_run=dry_run,
            fingerprint=plan_fingerprint(changes) if fingerprint is None else fingerprint,
        )


def plan_fingerprint(changes: list[Change]) -> str:
    """sha256 of the changes' canonical JSON (sorted keys, no spaces)."""
    data = [c.model_dump(mode="json") for c in changes]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def field_changes(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    """The leaves that differ between two JSON values, as dotted paths (`scaling.max_replicas`);
    a list is one leaf, and so is a block that appears or goes (`batching: null` → `{…}`
    lists its fields)."""
    if isinstance(old, dict | None) and isinstance(new, dict | None) and (old or new):
        old, new = old or {}, new or {}
        out: list[FieldChange] = []
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{prefix}.{key}" if prefix else str(key)
            out += field_changes(old.get(key), new.get(key), path)
        return out
    if old == new:
        return []
    return [FieldChange(field=prefix, old=old, new=new)]
