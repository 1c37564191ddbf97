"""The audit log: one append-only row per control action (or refused attempt), read by
admins oldest first with filters and `after_id` paging, or newest first with
`before_id` paging. Callers redact before they add:
this module stores what it is given."""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.core.errors import Invalid
from podium.store.tables import AuditRow

MAX_PAGE = 1000
_DETAIL_CHARS = 2000  # a problem's detail is short; longer text is cut


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str  # token id, or "-" when no valid token was given
    actor_name: str
    action: str  # endpoint.create, token.revoke, …
    object_kind: str
    object_name: str | None
    project: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    address: str | None
    result: int  # the HTTP status answered
    detail: str | None


def _record(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        actor_name=row.actor_name,
        action=row.action,
        object_kind=row.object_kind,
        object_name=row.object_name,
        project=row.project,
        before=row.before,
        after=row.after,
        address=row.address,
        result=row.result,
        detail=row.detail,
    )


class AuditRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def add(
        self,
        *,
        actor: str,
        actor_name: str,
        action: str,
        object_kind: str,
        object_name: str | None,
        project: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        address: str | None,
        result: int,
        detail: str | None,
    ) -> AuditRecord:
        row = AuditRow(
            at=self._clock.now(),
            actor=actor[:16],
            actor_name=actor_name[:64],
            action=action[:64],
            object_kind=object_kind[:32],
            object_name=None if object_name is None else object_name[:128],
            project=None if project is None else project[:15],
            before=before,
            after=after,
            address=None if address is None else address[:64],
            result=result,
            detail=None if detail is None else detail[:_DETAIL_CHARS],
        )
        self._s.add(row)
        self._s.flush()
        return _record(row)

    def list(
        self,
        *,
        project: str | None = None,
        projects: Collection[str] | None = None,
        actor: str | None = None,
        action: str | None = None,
        after_id: int = 0,
        before_id: int | None = None,
        newest_first: bool = False,
        limit: int = 100,
    ) -> builtins.list[AuditRecord]:
        """Up to `limit` entries with id > `after_id` (and < `before_id` when given), oldest
        first; `newest_first` takes the newest of them, newest first. `actor` matches the
        token id or the token's name; `action` a whole action (`endpoint.create`) or its
        object kind (`endpoint`); `projects` (when not None) keeps the entries of those
        projects only."""
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}, not {limit}", field="limit")
        stmt = select(AuditRow).where(AuditRow.id > after_id)
        if before_id is not None:
            stmt = stmt.where(AuditRow.id < before_id)
        if project is not None:
            stmt = stmt.where(AuditRow.project == project)
        if projects is not None:
            stmt = stmt.where(AuditRow.project.in_(sorted(projects)))
        if actor is not None:
            stmt = stmt.where((AuditRow.actor == actor) | (AuditRow.actor_name == actor))
        if action is not None:
            if "." in action:
                stmt = stmt.where(AuditRow.action == action)
            else:
                stmt = stmt.where(AuditRow.object_kind == action)
        order = AuditRow.id.desc() if newest_first else AuditRow.id
        stmt = stmt.order_by(order).limit(limit)
        return [_record(r) for r in self._s.scalars(stmt)]
