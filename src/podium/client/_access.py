"""The SDK's access-control methods (who am I, tokens, projects, secrets, audit, usage) as
a mixin of `PodiumClient`, and how the client finds its token.

Token discovery (`discover_token`): the `token` argument, else $PODIUM_TOKEN, else the
first line of `$PODIUM_HOME/credentials` (home `.podium` by default) when that file exists
and is readable, which is where `podium up` puts the admin token it makes on a fresh home.
That file holds this machine's all-projects admin token, so it is read only when the server
is on this machine (the URL's host is loopback: 127.0.0.0/8, ::1 or `localhost`); a client
of any other server sends only a token it was given.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from podium.client._views import (
    AuditEntry,
    AuditList,
    CreatedToken,
    ProjectView,
    SecretView,
    TokenList,
    TokenView,
    UsageReport,
    WhoAmI,
)

TOKEN_ENV = "PODIUM_TOKEN"
CREDENTIALS_FILE = "credentials"
DEFAULT_URL = "http://127.0.0.1:8000"
M = TypeVar("M", bound=BaseModel)


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """`$PODIUM_HOME/credentials` (home `.podium` by default), as `podium up` writes it."""
    env = os.environ if env is None else env
    return Path(env.get("PODIUM_HOME", ".podium")).expanduser() / CREDENTIALS_FILE


def is_loopback(url: str) -> bool:
    """Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or ::1."""
    host = (httpx.URL(url).host or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def discover_token(
    token: str | None = None, env: Mapping[str, str] | None = None, *, url: str | None = None
) -> str | None:
    """The token to send to `url` (None: $PODIUM_URL, else the default local server), or
    None to send none. The credentials file is read only for a loopback `url`."""
    if token:
        return token.strip()
    env = os.environ if env is None else env
    if from_env := env.get(TOKEN_ENV, "").strip():
        return from_env
    if not is_loopback(url or env.get("PODIUM_URL") or DEFAULT_URL):
        return None
    try:
        text = credentials_path(env).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.strip().splitlines()
    return lines[0].strip() or None if lines else None


def project_params(project: str | None) -> dict[str, str]:
    """`{"project": P}` for a query, or nothing (the API's default)."""
    return {"project": project} if project else {}


def _when(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else value


def _seg(value: str) -> str:
    return quote(value, safe="")


def _is_list(response: httpx.Response) -> bool:
    try:
        return isinstance(response.json(), list)
    except ValueError:
        return False


class AccessMethods:
    """Needs `_request`, `_parse`, `_parse_list` (PodiumClient's plumbing)."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def _parse(self, response: httpx.Response, cls: type[M]) -> M: ...
        def _parse_list(self, response: httpx.Response, cls: type[M]) -> list[M]: ...

    # ------------------------------------------------------------ who and tokens

    def whoami(self) -> WhoAmI:
        """The token this client sends: its id, name, scopes (as granted) and projects."""
        return self._parse(self._request("GET", "/whoami"), WhoAmI)

    def create_token(
        self,
        name: str,
        scopes: Iterable[str],
        *,
        projects: Iterable[str] | None = ("default",),
        expires_in_s: int | None = None,
        rate_limit: Mapping[str, float] | None = None,
    ) -> CreatedToken:
        """Create a token (admin). `projects` None: every project (admins only). The answer's
        `token` is the only time the secret is shown: keep it."""
        body: dict[str, Any] = {
            "name": name,
            "scopes": [str(s) for s in scopes],
            "projects": None if projects is None else list(projects),
        }
        if expires_in_s is not None:
            body["expires_in_s"] = int(expires_in_s)
        if rate_limit is not None:
            body["rate_limit"] = dict(rate_limit)
        return self._parse(self._request("POST", "/tokens", json=body), CreatedToken)

    def tokens(self, *, include_revoked: bool = False) -> list[TokenView]:
        params = {"include_revoked": "true"} if include_revoked else {}
        response = self._request("GET", "/tokens", params=params)
        if _is_list(response):
            return self._parse_list(response, TokenView)
        return self._parse(response, TokenList).items  # {"items": [...]}

    def token(self, token_id: str) -> TokenView:
        return self._parse(self._request("GET", f"/tokens/{_seg(token_id)}"), TokenView)

    def revoke_token(self, token_id: str) -> TokenView:
        """Revoke a token: it fails from the next request on (other servers: within a second)."""
        return self._parse(self._request("DELETE", f"/tokens/{_seg(token_id)}"), TokenView)

    # ------------------------------------------------------------ projects

    def projects(self) -> list[ProjectView]:
        return self._parse_list(self._request("GET", "/projects"), ProjectView)

    def project(self, name: str) -> ProjectView:
        return self._parse(self._request("GET", f"/projects/{_seg(name)}"), ProjectView)

    def create_project(
        self,
        name: str,
        *,
        quotas: Mapping[str, float | None] | None = None,
        description: str | None = None,
    ) -> ProjectView:
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if quotas:
            body["quotas"] = dict(quotas)
        return self._parse(self._request("POST", "/projects", json=body), ProjectView)

    def update_project(
        self,
        name: str,
        *,
        quotas: Mapping[str, float | None] | None = None,
        description: str | None = None,
    ) -> ProjectView:
        """Change a project's description and/or quotas (a quota given as None: unlimited)."""
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if quotas is not None:
            body["quotas"] = dict(quotas)
        response = self._request("PATCH", f"/projects/{_seg(name)}", json=body)
        return self._parse(response, ProjectView)

    def delete_project(self, name: str) -> None:
        """Delete an empty project (`Conflict` while it holds endpoints, models or secrets)."""
        self._request("DELETE", f"/projects/{_seg(name)}")

    # ------------------------------------------------------------ secrets

    def secrets(self, project: str | None = None) -> list[SecretView]:
        params = project_params(project)
        return self._parse_list(self._request("GET", "/secrets", params=params), SecretView)

    def set_secret(self, name: str, value: str, *, project: str | None = None) -> SecretView:
        """Create or replace a secret; its value is never answered back."""
        response = self._request(
            "PUT", f"/secrets/{_seg(name)}", json={"value": value}, params=project_params(project)
        )
        return self._parse(response, SecretView)

    def delete_secret(self, name: str, *, project: str | None = None) -> None:
        self._request("DELETE", f"/secrets/{_seg(name)}", params=project_params(project))

    # ------------------------------------------------------------ audit and usage

    def audit(
        self,
        *,
        project: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """The audit log (admin), oldest first after `after_id`."""
        given = {
            "project": project,
            "actor": actor,
            "action": action,
            "after_id": after_id,
            "limit": limit,
        }
        params = {k: v for k, v in given.items() if v is not None}
        return self._parse(self._request("GET", "/audit", params=params), AuditList).entries

    def usage(
        self,
        project: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        group_by: str = "endpoint",
    ) -> UsageReport:
        """Replica-seconds and cost in [start, end) by endpoint or by day."""
        params = self._usage_params(project, start, end, group_by)
        return self._parse(self._request("GET", "/usage", params=params), UsageReport)

    def usage_csv(
        self,
        project: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        group_by: str = "endpoint",
    ) -> str:
        """The same report as CSV text, with a header row."""
        params = {**self._usage_params(project, start, end, group_by), "format": "csv"}
        return self._request("GET", "/usage", params=params).text

    @staticmethod
    def _usage_params(
        project: str | None, start: datetime | str | None, end: datetime | str | None, group: str
    ) -> dict[str, str]:
        given = {"project": project, "from": _when(start), "to": _when(end), "group_by": group}
        return {k: v for k, v in given.items() if v}
