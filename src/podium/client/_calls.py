"""The requests the SDK makes and how it reads their answers, as pure functions.

`PodiumClient` and `AsyncClient` differ only in how they send a `Call` (blocking or
awaited); what a call is (method, path, query, body, headers) and what its answer means
are built here once, so both clients validate input, name fields and read answers alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from podium import __version__
from podium.client._access import DEFAULT_URL, discover_token, project_params
from podium.client._errors import WaitTimeout, invalid_from_validation
from podium.core.access import DEFAULT_PROJECT
from podium.core.errors import Invalid, LoadError, PodiumError
from podium.core.phases import EndpointStatus
from podium.core.schemas import EndpointPublic
from podium.core.spec import EndpointCreate, EndpointUpdate, ScaleRequest

API_PREFIX = "/api/v1"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request, relative to the server's URL."""

    method: str
    url: str
    params: Mapping[str, str] | list[tuple[str, str]] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Through the gateway, whose answer may be the endpoint's own, passed on as it came:
    # retried only on Podium's own refusal (`_retry`).
    relayed: bool = False

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `httpx.Client.request` (and the async one)."""
        out: dict[str, Any] = {}
        if self.params:
            out["params"] = self.params
        if self.content is not None:
            out["content"] = self.content
        elif self.json is not None:
            out["json"] = self.json
        if self.headers:
            out["headers"] = dict(self.headers)
        return out


def api(method: str, path: str, project: str | None = None, **fields: Any) -> Call:
    """A control-plane call (`/api/v1` + path), in `project` when one is named."""
    params = fields.pop("params", None)
    if params is None:
        params = project_params(project)
    return Call(method, API_PREFIX + path, params=params, **fields)


# ---------------------------------------------------------------- endpoints


def deploy(spec: EndpointCreate | Mapping[str, Any]) -> Call:
    """Create an endpoint; a mapping is validated locally first (`Invalid` names the field)."""
    body = validated(EndpointCreate, spec).model_dump(mode="json", exclude_unset=True)
    return api("POST", "/endpoints", json=body)


def list_endpoints(
    status: EndpointStatus | str | None = None,
    label: str | Mapping[str, str] | None = None,
    name: str | None = None,
    project: str | None = None,
) -> Call:
    params: list[tuple[str, str]] = list(project_params(project).items())
    if status is not None:
        params.append(("status", str(status)))
    labels = [label] if isinstance(label, str) else [f"{k}={v}" for k, v in (label or {}).items()]
    params += [("label", item) for item in labels]
    if name:
        params.append(("name", name))
    return api("GET", "/endpoints", params=params)


def get_endpoint(name: str, project: str | None = None) -> Call:
    return api("GET", f"/endpoints/{seg(name)}", project)


def update(name: str, changes: EndpointUpdate | Mapping[str, Any], project: str | None) -> Call:
    body = validated(EndpointUpdate, changes).model_dump(mode="json", exclude_unset=True)
    return api("PATCH", f"/endpoints/{seg(name)}", project, json=body)


def action(name: str, verb: str, body: Any = None, project: str | None = None) -> Call:
    """pause, resume, wake, scale-to-zero, scale."""
    return api("POST", f"/endpoints/{seg(name)}/{verb}", project, json=body)


def scale(name: str, min_replicas: int, max_replicas: int, project: str | None) -> Call:
    """Checked locally first: `Invalid` names the field under `scaling`, as deploy and update
    name it (`scaling.max_replicas`, where the API, whose body has no `scaling`, says
    `max_replicas`)."""
    body = {"min_replicas": min_replicas, "max_replicas": max_replicas}
    try:
        ScaleRequest.model_validate(body)
    except ValidationError as e:
        error = invalid_from_validation(e)
        where = f"scaling.{error.field}" if error.field else "scaling"
        raise Invalid(error.message, field=where) from None
    return action(name, "scale", body, project)


def delete(name: str, project: str | None = None) -> Call:
    return api("DELETE", f"/endpoints/{seg(name)}", project)


# ---------------------------------------------------------------- data plane


def invoke(
    name: str,
    payload: Any,
    *,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    project: str | None = None,
) -> Call:
    """POST `payload` as JSON to the endpoint, through the gateway."""
    url = f"{gateway_prefix(project)}/endpoints/{seg(name)}/{path.lstrip('/')}"
    return Call("POST", url, json=payload, headers=dict(headers or {}), relayed=True)


def invoke_answer(response: httpx.Response) -> Any:
    """An endpoint's answer: its JSON value, else its text (None when empty)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def predict_async(
    name: str,
    body: Any,
    *,
    path: str = "/",
    priority: int | None = None,
    ttl_s: float | None = None,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    headers: Mapping[str, str] | None = None,
    project: str | None = None,
) -> Call:
    """Queue `body` (JSON; `bytes` as they are) as a task: the gateway answers 202."""
    sent = dict(headers or {})
    if priority is not None:
        sent["X-Podium-Priority"] = str(priority)
    if ttl_s is not None:
        sent["X-Podium-Task-Ttl"] = f"{ttl_s:g}"
    if idempotency_key is not None:
        sent["Idempotency-Key"] = idempotency_key
    if callback_url is not None:
        sent["X-Podium-Callback-Url"] = callback_url
    url = f"{gateway_prefix(project)}/endpoints/{seg(name)}/async/{path.lstrip('/')}"
    if isinstance(body, bytes | bytearray):
        sent.setdefault("content-type", "application/octet-stream")
        return Call("POST", url, content=bytes(body), headers=sent, relayed=True)
    return Call("POST", url, json=body, headers=sent, relayed=True)


def task_accepted(response: httpx.Response) -> tuple[str, bool]:
    """(task id, replayed) from the gateway's 202 to `predict_async`; replayed: the gateway
    had seen the Idempotency-Key, so this is the same task as before."""
    try:
        task_id = response.json()["task_id"]
    except (ValueError, KeyError, TypeError) as e:
        where = f"{response.request.method} {response.request.url.path}"
        raise PodiumError(
            f"unexpected answer to {where}: no task_id ({response.status_code})"
        ) from e
    replayed = response.headers.get("idempotency-replayed", "").lower() == "true"
    return str(task_id), replayed


def get_task(task_id: str) -> Call:
    return api("GET", f"/tasks/{seg(task_id)}")


def cancel_task(task_id: str) -> Call:
    return api("DELETE", f"/tasks/{seg(task_id)}")


# ---------------------------------------------------------------- answers


def parse(response: httpx.Response, cls: type[M], base_url: str) -> M:
    try:
        return cls.model_validate(response.json())
    except ValueError as e:  # bad JSON or pydantic.ValidationError
        raise unexpected(response, e, base_url) from e


def parse_list(response: httpx.Response, cls: type[M], base_url: str) -> list[M]:
    try:
        data = response.json()
        if not isinstance(data, list):
            raise ValueError(f"expected a list, got {type(data).__name__}")
        return [cls.model_validate(item) for item in data]
    except ValueError as e:
        raise unexpected(response, e, base_url) from e


def unexpected(response: httpx.Response, error: Exception, base_url: str) -> PodiumError:
    where = f"{response.request.method} {response.request.url.path}"
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return PodiumError(f"unexpected answer from Podium at {base_url} to {where}: {first}")


# ---------------------------------------------------------------- small helpers


def connection(base_url: str | None, token: str | None) -> tuple[str, str | None, dict[str, str]]:
    """(server URL, token, headers) of a client: `base_url` else $PODIUM_URL else the local
    default; the token as `_access.discover_token` finds it."""
    url = (base_url or os.environ.get("PODIUM_URL") or DEFAULT_URL).rstrip("/")
    found = discover_token(token, url=url)
    headers = {"user-agent": f"podium-client/{__version__}"}
    if found:
        headers["authorization"] = f"Bearer {found}"
    return url, found, headers


def seg(value: str) -> str:
    """One URL path segment (names never contain '/', but never trust input)."""
    return quote(value, safe="")


def gateway_prefix(project: str | None) -> str:
    """Where a project's endpoints are served: `` for the default one, `/p/PROJECT` else."""
    if project is None or project == DEFAULT_PROJECT:
        return ""
    return f"/p/{seg(project)}"


def validated(cls: type[M], value: M | Mapping[str, Any]) -> M:
    """`value` as `cls`: a mapping is validated (`Invalid` naming the first bad field)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a {cls.__name__} or a mapping, got {type(value).__name__}")
    try:
        return cls.model_validate(dict(value))
    except ValidationError as e:
        raise invalid_from_validation(e) from None


def wait_done(
    ep: EndpointPublic, wanted: frozenset[EndpointStatus], timeout: float, left: float
) -> bool:
    """One look of a wait for the endpoint's status to be one of `wanted`: True once it is.

    Raises `LoadError` when it became failed (and failed is not wanted), with the status
    reason; `WaitTimeout` (an `Unavailable` and a `TimeoutError`) when no time is `left`."""
    if ep.status in wanted:
        return True
    reason = f": {ep.status_reason}" if ep.status_reason else ""
    if ep.status is EndpointStatus.FAILED:
        raise LoadError(f"endpoint {ep.name} failed{reason or ' (no reason given)'}")
    if left <= 0:
        want = " or ".join(sorted(s.value for s in wanted))
        raise WaitTimeout(
            f"endpoint {ep.name} is still {ep.status.value} after {timeout:g}s "
            f"(waiting for {want}){reason}"
        )
    return False
