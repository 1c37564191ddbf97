"""Who may do what: scopes, principals, API tokens and the in-memory token directory.

A token is `pod_<id>_<secret>`: `id` (12 hex digits) names it in lists, events and the
audit log; `secret` (43 URL-safe characters, 256 random bits) is shown once, when the token
is created, and only its SHA-256 is stored. A plain hash is enough (no bcrypt/argon2):
the secret is random and long, so there is nothing to guess, and checking it must be cheap
because the gateway checks one on every protected request.

Scopes (a token holds one or more; `admin` implies all, `deploy` implies `read`):

  admin   everything, in every project: tokens, projects and quotas, audit, usage
  deploy  create, update, delete, pause, resume, scale endpoints; push models; set secrets
  invoke  call endpoints through the gateway
  read    see endpoints, models, events, logs, metrics, usage

A token is bound to projects (`projects`; `None` means every project, which only an
admin may grant). The `TokenDirectory` is what the API and the gateway check against:
a dict in memory, swapped whole by whoever loads it from the store, so a check never
touches the database and never takes a lock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_PROJECT = "default"
TOKEN_PREFIX = "pod_"
_TOKEN_RE = re.compile(r"^pod_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
PROJECT_SEPARATOR = "."  # in an endpoint's or model's key: never part of a name

# The browser session (the API and the gateway alike): the token rides in SESSION_COOKIE
# (HttpOnly); CSRF_COOKIE is random, readable by the page, and echoed in CSRF_HEADER by a
# cookie-authenticated request. Neither cookie is ever forwarded to a replica.
SESSION_COOKIE = "podium_session"
CSRF_COOKIE = "podium_csrf"
CSRF_HEADER = "X-CSRF-Token"


# The ASGI scope's key for the caller once authenticated (the gateway's access stage, the
# API's `deps.get_caller`): the request record, the audit trail and the task intake read it.
PRINCIPAL_KEY = "podium.principal"


class Scope(StrEnum):
    ADMIN = "admin"
    DEPLOY = "deploy"
    INVOKE = "invoke"
    READ = "read"


# What each scope grants besides itself.
IMPLIES: Mapping[Scope, frozenset[Scope]] = {
    Scope.ADMIN: frozenset(Scope),
    Scope.DEPLOY: frozenset({Scope.DEPLOY, Scope.READ}),
    Scope.INVOKE: frozenset({Scope.INVOKE}),
    Scope.READ: frozenset({Scope.READ}),
}


def granted(scopes: Iterable[Scope]) -> frozenset[Scope]:
    """Every scope that `scopes` grant, implied ones included."""
    out: set[Scope] = set()
    for s in scopes:
        out |= IMPLIES[s]
    return frozenset(out)


class Visibility(StrEnum):
    """Who may invoke an endpoint: `protected` needs a token with `invoke` on the
    endpoint's project; `public` needs none (control actions always need a token)."""

    PROTECTED = "protected"
    PUBLIC = "public"


def endpoint_key(project: str, name: str) -> str:
    """The store's, the controller's and the routing table's name for an endpoint (or a
    model): its name in the default project, `project.name` in any other. A name never
    holds a dot, so keys never collide."""
    return name if project == DEFAULT_PROJECT else f"{project}{PROJECT_SEPARATOR}{name}"


def split_key(key: str) -> tuple[str, str]:
    """`(project, name)` of a key made by `endpoint_key`."""
    project, sep, name = key.partition(PROJECT_SEPARATOR)
    return (project, name) if sep else (DEFAULT_PROJECT, key)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `rps` requests per second on average, bursts of up to `burst`."""

    rps: float
    burst: int


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from, as the API and the gateway see it."""

    token_id: str
    name: str
    scopes: frozenset[Scope]  # as granted (implied scopes included)
    projects: frozenset[str] | None  # None: every project
    expires_at: float | None = None  # unix seconds
    rate_limit: RateLimit | None = None

    def may(self, scope: Scope, project: str | None = None) -> bool:
        """Holds `scope`, on `project` when one is named."""
        if scope not in self.scopes:
            return False
        return project is None or self.projects is None or project in self.projects

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes


# The principal of every request when auth is off (`podium up --no-auth`).
NOBODY_CHECKS = Principal(
    token_id="-", name="auth disabled", scopes=frozenset(Scope), projects=None
)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just made: `token` is the only time the secret exists outside the caller."""

    token_id: str
    token: str = field(repr=False)
    secret_hash: str = field(repr=False)


def issue_token() -> IssuedToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)  # 43 characters
    return IssuedToken(token_id, f"{TOKEN_PREFIX}{token_id}_{secret}", hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """`(token_id, secret)`, or None when `token` is not shaped like a Podium token."""
    m = _TOKEN_RE.match(token)
    return (m.group(1), m.group(2)) if m else None


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header value (case-insensitive scheme)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class AuthFailure(StrEnum):
    """Why a presented token was not accepted (said in the 401's detail)."""

    MISSING = "no token was given (send `Authorization: Bearer <token>`)"
    MALFORMED = "the token is not a Podium token"
    UNKNOWN = "the token is unknown or was revoked"
    EXPIRED = "the token has expired"


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """A live (not revoked) token as the directory holds it."""

    principal: Principal
    secret_hash: str = field(repr=False)


class TokenDirectory:
    """The live tokens, in memory (see the module doc). Reads are a dict lookup and a
    constant-time hash comparison; writers replace the dict, so a check never waits."""

    def __init__(self, entries: Iterable[TokenEntry] = ()) -> None:
        self._entries: dict[str, TokenEntry] = {e.principal.token_id: e for e in entries}

    def load(self, entries: Iterable[TokenEntry]) -> None:
        """Replace every entry (a reload from the store)."""
        self._entries = {e.principal.token_id: e for e in entries}

    def put(self, entry: TokenEntry) -> None:
        entries = dict(self._entries)
        entries[entry.principal.token_id] = entry
        self._entries = entries

    def drop(self, token_id: str) -> None:
        """A revoked token: it fails from the next check on."""
        if token_id in self._entries:
            entries = dict(self._entries)
            del entries[token_id]
            self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def principal_of(self, token_id: str, now: float | None = None) -> Principal | AuthFailure:
        """The principal of a live token known by its id alone (no secret): a task runs as
        its creator, checked again when it runs (a revoked or expired token's tasks fail)."""
        entry = self._entries.get(token_id)
        if entry is None:
            return AuthFailure.UNKNOWN
        expires = entry.principal.expires_at
        if expires is not None and (time.time() if now is None else now) >= expires:
            return AuthFailure.EXPIRED
        return entry.principal

    def authenticate(self, token: str | None, now: float | None = None) -> Principal | AuthFailure:
        if not token:
            return AuthFailure.MISSING
        parsed = parse_token(token)
        if parsed is None:
            return AuthFailure.MALFORMED
        token_id, secret = parsed
        entry = self._entries.get(token_id)
        if entry is None or not hmac.compare_digest(entry.secret_hash, hash_secret(secret)):
            return AuthFailure.UNKNOWN
        expires = entry.principal.expires_at
        if expires is not None and (time.time() if now is None else now) >= expires:
            return AuthFailure.EXPIRED
        return entry.principal
