"""API tokens: created with a hash of their secret, listed, revoked (never deleted, so the
audit log can still name them), and read whole by whoever keeps the `TokenDirectory`."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.core.access import (
    IssuedToken,
    Principal,
    RateLimit,
    Scope,
    TokenEntry,
    granted,
)
from podium.core.clock import Clock
from podium.core.errors import Conflict, NotFound
from podium.store.tables import TokenRow


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    name: str
    scopes: tuple[Scope, ...]  # as given (implied scopes not added)
    projects: tuple[str, ...] | None  # None: every project
    creator: str
    rate_limit: RateLimit | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def principal(self) -> Principal:
        return Principal(
            token_id=self.id,
            name=self.name,
            scopes=granted(self.scopes),
            projects=None if self.projects is None else frozenset(self.projects),
            expires_at=None if self.expires_at is None else self.expires_at.timestamp(),
            rate_limit=self.rate_limit,
        )


def _record(row: TokenRow) -> TokenRecord:
    limit = None
    if row.rate_rps is not None and row.rate_burst is not None:
        limit = RateLimit(row.rate_rps, row.rate_burst)
    return TokenRecord(
        id=row.id,
        name=row.name,
        scopes=tuple(Scope(s) for s in row.scopes),
        projects=None if row.projects is None else tuple(row.projects),
        creator=row.creator,
        rate_limit=limit,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class TokenRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def create(
        self,
        issued: IssuedToken,
        *,
        name: str,
        scopes: tuple[Scope, ...],
        projects: tuple[str, ...] | None,
        creator: str,
        expires_at: datetime | None = None,
        rate_limit: RateLimit | None = None,
    ) -> TokenRecord:
        if self._s.get(TokenRow, issued.token_id) is not None:  # 48 random bits: never seen
            raise Conflict(f"token id {issued.token_id} exists; try again")
        row = TokenRow(
            id=issued.token_id,
            name=name,
            secret_hash=issued.secret_hash,
            scopes=[s.value for s in scopes],
            projects=None if projects is None else list(projects),
            creator=creator,
            rate_rps=None if rate_limit is None else rate_limit.rps,
            rate_burst=None if rate_limit is None else rate_limit.burst,
            created_at=self._clock.now(),
            expires_at=expires_at,
            revoked_at=None,
        )
        self._s.add(row)
        self._s.flush()
        return _record(row)

    def get(self, token_id: str) -> TokenRecord:
        row = self._s.get(TokenRow, token_id)
        if row is None:
            raise NotFound(f"token {token_id!r} not found", field="id")
        return _record(row)

    def list(self, *, include_revoked: bool = False) -> list[TokenRecord]:
        stmt = select(TokenRow).order_by(TokenRow.created_at, TokenRow.id)
        if not include_revoked:
            stmt = stmt.where(TokenRow.revoked_at.is_(None))
        return [_record(r) for r in self._s.scalars(stmt)]

    def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token (again: no change); it keeps its row."""
        row = self._s.get(TokenRow, token_id)
        if row is None:
            raise NotFound(f"token {token_id!r} not found", field="id")
        if row.revoked_at is None:
            row.revoked_at = self._clock.now()
            self._s.flush()
        return _record(row)

    def live_entries(self) -> builtins.list[TokenEntry]:
        """Every token not revoked, as the `TokenDirectory` holds it (expired ones too: the
        directory says "expired" rather than "unknown")."""
        stmt = select(TokenRow).where(TokenRow.revoked_at.is_(None))
        return [TokenEntry(_record(r).principal(), r.secret_hash) for r in self._s.scalars(stmt)]
