"""`PodiumClient`: the Python SDK over Podium's REST API (control plane) and gateway.

Every method either returns pydantic models from `podium.core.schemas` or raises an error
of the `podium.core.errors` tree (see `_errors`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from podium import __version__
from podium.client._errors import (
    error_from_response,
    invalid_from_validation,
    raise_for_status,
    translate_transport,
)
from podium.client._packing import iter_file, pack_folder
from podium.core.errors import Conflict, Invalid, LoadError, PodiumError, Unavailable
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.schemas import (
    EndpointList,
    EndpointPublic,
    EventList,
    EventPublic,
    LogLine,
    LogList,
    ModelPublic,
    ModelVersionPublic,
    ModelVersionPushed,
    RevisionPublic,
)
from podium.core.spec import (
    EndpointCreate,
    EndpointUpdate,
    InstanceType,
    RepoRef,
    ScaleRequest,
    parse_model_ref,
)

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"

M = TypeVar("M", bound=BaseModel)


class PodiumClient:
    """A synchronous client for one Podium server.

    `base_url` defaults to $PODIUM_URL, then http://127.0.0.1:8000. `transport` lets tests
    swap the network (e.g. `httpx.MockTransport(handler)`).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("PODIUM_URL") or DEFAULT_URL).rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"user-agent": f"podium-client/{__version__}"},
        )

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PodiumClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PodiumClient({self.base_url!r})"

    # ------------------------------------------------------------ server

    def health(self) -> dict[str, Any]:
        data = self._request("GET", "/health").json()
        return data if isinstance(data, dict) else {"status": data}

    def instance_types(self) -> list[InstanceType]:
        return self._parse_list(self._request("GET", "/instance-types"), InstanceType)

    # ------------------------------------------------------------ models

    def push_model(
        self, path: str | Path, name: str, *, framework: str | None = None
    ) -> ModelVersionPushed:
        """Upload a model: a folder is packed as NAME.tar.gz; a file or archive is sent as is.

        When the latest version already holds the same bytes, that version is returned with
        `created` False (nothing new is stored)."""
        source = Path(path).expanduser()
        if not source.exists():
            raise Invalid(f"{source} does not exist", field="path")
        if source.is_dir():
            with tempfile.TemporaryDirectory(prefix="podium-push-") as tmp:
                archive = Path(tmp) / f"{source.resolve().name or 'model'}.tar.gz"
                pack_folder(source, archive)
                return self._upload(archive, name, framework)
        if not source.is_file():
            raise Invalid(f"{source} is neither a file nor a folder", field="path")
        return self._upload(source, name, framework)

    def _upload(self, file: Path, name: str, framework: str | None) -> ModelVersionPushed:
        params = {"filename": file.name}
        if framework:
            params["framework"] = framework
        response = self._request(
            "POST",
            f"/models/{_seg(name)}/versions",
            params=params,
            content=iter_file(file),
            headers={
                "content-type": "application/octet-stream",
                "content-length": str(file.stat().st_size),
            },
            timeout=httpx.Timeout(self.timeout, read=max(self.timeout, 600.0), write=None),
        )
        return self._parse(response, ModelVersionPushed)

    def models(self) -> list[ModelPublic]:
        return self._parse_list(self._request("GET", "/models"), ModelPublic)

    def model(self, name: str) -> ModelPublic:
        return self._parse(self._request("GET", f"/models/{_seg(name)}"), ModelPublic)

    def model_version(self, name: str, version: int) -> ModelVersionPublic:
        response = self._request("GET", f"/models/{_seg(name)}/versions/{int(version)}")
        return self._parse(response, ModelVersionPublic)

    def delete_model(self, ref: str) -> None:
        """Delete one version (`iris:2`) or a whole model with all its versions (`iris`)."""
        parsed = parse_model_ref(ref, field="ref")
        if not isinstance(parsed, RepoRef):
            raise Invalid(
                f"{ref!r} is not in the model repository: use NAME or NAME:VERSION", field="ref"
            )
        if parsed.version is None:
            self._request("DELETE", f"/models/{_seg(parsed.name)}")
        else:
            self._request("DELETE", f"/models/{_seg(parsed.name)}/versions/{parsed.version}")

    # ------------------------------------------------------------ endpoints

    def deploy(self, spec: EndpointCreate | Mapping[str, Any]) -> EndpointPublic:
        """Create an endpoint. A mapping is validated locally first (`Invalid` names the field).
        Without `framework`, the server takes the one the model version records."""
        checked = _validated(EndpointCreate, spec)
        body = checked.model_dump(mode="json", exclude_unset=True)
        return self._parse(self._request("POST", "/endpoints", json=body), EndpointPublic)

    def endpoints(
        self,
        status: EndpointStatus | str | None = None,
        label: str | Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> list[EndpointPublic]:
        """List endpoints; `label` is `"k=v"` or a mapping (all must match)."""
        params: list[tuple[str, str]] = []
        if status is not None:
            params.append(("status", str(status)))
        if isinstance(label, str):
            labels = [label]
        else:
            labels = [f"{k}={v}" for k, v in (label or {}).items()]
        params += [("label", item) for item in labels]
        if name:
            params.append(("name", name))
        response = self._request("GET", "/endpoints", params=params)
        return self._parse(response, EndpointList).items

    def endpoint(self, name: str) -> EndpointPublic:
        return self._parse(self._request("GET", f"/endpoints/{_seg(name)}"), EndpointPublic)

    def update(
        self,
        name: str,
        changes: EndpointUpdate | Mapping[str, Any],
        *,
        wait: bool = False,
        timeout: float = 300,
    ) -> EndpointPublic:
        """Change some fields; only the fields given (set) are sent.

        `wait=True`: return only once the change is rolled out (`wait_rolled_out`), raising
        `LoadError` with the reason if the endpoint's new revision fails."""
        checked = _validated(EndpointUpdate, changes)
        body = checked.model_dump(mode="json", exclude_unset=True)
        response = self._request("PATCH", f"/endpoints/{_seg(name)}", json=body)
        ep = self._parse(response, EndpointPublic)
        if wait:
            return self.wait_rolled_out(name, ep.revision, timeout=timeout)
        return ep

    def pause(self, name: str) -> EndpointPublic:
        return self._action(name, "pause")

    def resume(self, name: str) -> EndpointPublic:
        return self._action(name, "resume")

    def wake(self, name: str) -> EndpointPublic:
        """Start a scaled-to-zero endpoint now, without waiting for a request."""
        return self._action(name, "wake")

    def scale(self, name: str, min_replicas: int, max_replicas: int) -> EndpointPublic:
        """Set the replica bounds; checked locally first (`Invalid` with the field under
        `scaling`, as deploy and update name it: `scaling.max_replicas` where the API, whose
        body has no `scaling`, says `max_replicas`)."""
        body = {"min_replicas": min_replicas, "max_replicas": max_replicas}
        try:
            ScaleRequest.model_validate(body)
        except ValidationError as e:
            error = invalid_from_validation(e)
            where = f"scaling.{error.field}" if error.field else "scaling"
            raise Invalid(error.message, field=where) from None
        return self._action(name, "scale", body)

    def delete(self, name: str) -> EndpointPublic:
        """Start deleting an endpoint; it is gone once its replicas have stopped."""
        return self._parse(self._request("DELETE", f"/endpoints/{_seg(name)}"), EndpointPublic)

    def _action(self, name: str, action: str, body: Any = None) -> EndpointPublic:
        response = self._request("POST", f"/endpoints/{_seg(name)}/{action}", json=body)
        return self._parse(response, EndpointPublic)

    # ------------------------------------------------------------ observing

    def events(self, name: str, after: int = 0, limit: int = 500) -> list[EventPublic]:
        params = {"after": after, "limit": limit}
        response = self._request("GET", f"/endpoints/{_seg(name)}/events", params=params)
        return self._parse(response, EventList).items

    def revisions(self, name: str) -> list[RevisionPublic]:
        response = self._request("GET", f"/endpoints/{_seg(name)}/revisions")
        return self._parse_list(response, RevisionPublic)

    def logs(self, name: str, tail: int = 200, replica: str | None = None) -> list[LogLine]:
        params = _log_params(tail, replica, follow=False)
        response = self._request("GET", f"/endpoints/{_seg(name)}/logs", params=params)
        return self._parse(response, LogList).items

    def replica_metrics(self, name: str, replica_id: str) -> str:
        """One replica's Prometheus metrics text, fetched from it by the server now (the
        gateway does not serve a replica's own `/metrics`)."""
        path = f"/endpoints/{_seg(name)}/replicas/{_seg(replica_id)}/metrics"
        return self._request("GET", path).text

    def follow_logs(self, name: str, tail: int = 200, replica: str | None = None) -> Iterator[str]:
        """Yield log lines as they are written (the last `tail` first) until the server stops.

        A generator: the request is made, and errors raised, on the first `next()`.
        """
        params = _log_params(tail, replica, follow=True)
        path = f"{API_PREFIX}/endpoints/{_seg(name)}/logs"
        timeout = httpx.Timeout(self.timeout, read=None)
        with (
            translate_transport(self.base_url),
            self._http.stream("GET", path, params=params, timeout=timeout) as response,
        ):
            if response.is_error:
                raise error_from_response(response)
            yield from response.iter_lines()

    def wait_for(
        self,
        name: str,
        statuses: Iterable[EndpointStatus | str],
        timeout: float = 120,
        poll: float = 0.25,
    ) -> EndpointPublic:
        """Poll until the endpoint's status is one of `statuses`.

        Raises `LoadError` at once if it becomes failed (and failed is not wanted), with the
        status reason; `Unavailable` after `timeout` seconds, with the last status seen.
        """
        wanted = {EndpointStatus(s) for s in statuses}
        deadline = time.monotonic() + timeout
        while True:
            ep = self.endpoint(name)
            if ep.status in wanted:
                return ep
            reason = f": {ep.status_reason}" if ep.status_reason else ""
            if ep.status is EndpointStatus.FAILED:
                raise LoadError(f"endpoint {name} failed{reason or ' (no reason given)'}")
            left = deadline - time.monotonic()
            if left <= 0:
                want = " or ".join(sorted(s.value for s in wanted))
                raise Unavailable(
                    f"endpoint {name} is still {ep.status.value} after {timeout:g}s "
                    f"(waiting for {want}){reason}"
                )
            time.sleep(min(poll, left))

    def wait_rolled_out(
        self, name: str, revision: int, timeout: float = 300, poll: float = 0.25
    ) -> EndpointPublic:
        """Poll until `revision` is the endpoint's current revision and fully serves: every
        replica is of it and ready, as many as desired, and no replica of an older revision
        is left (or, at zero desired replicas, none at all). The server says `updating` until
        then, also while old replicas drain; the replicas are checked as well, so an answer
        read just before the controller acted on the change is not taken for the end.

        Raises `LoadError` at once if the endpoint becomes failed at this revision (e.g. its
        model does not load, while older replicas may still serve), with the status reason;
        `Conflict` if a newer revision replaced it meanwhile; `Unavailable` after `timeout`
        seconds, with what is still missing.
        """
        deadline = time.monotonic() + timeout
        while True:
            ep = self.endpoint(name)
            if ep.revision > revision:
                raise Conflict(
                    f"endpoint {name}: revision {revision} was replaced by revision "
                    f"{ep.revision} before it was rolled out",
                    field="revision",
                )
            reason = f": {ep.status_reason}" if ep.status_reason else ""
            if ep.status is EndpointStatus.FAILED:
                raise LoadError(
                    f"endpoint {name} failed at revision {ep.revision}"
                    f"{reason or ' (no reason given)'}"
                )
            missing = _rollout_missing(ep, revision)
            if missing is None:
                return ep
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(
                    f"endpoint {name} has not rolled out revision {revision} after "
                    f"{timeout:g}s: {missing} (status {ep.status.value}{reason})"
                )
            time.sleep(min(poll, left))

    # ------------------------------------------------------------ data plane

    def invoke(
        self,
        name: str,
        payload: Any,
        *,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """POST `payload` as JSON to the endpoint (through the gateway); return its answer."""
        url = f"/endpoints/{_seg(name)}/{path.lstrip('/')}"
        response = self._send("POST", url, json=payload, headers=headers)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    # ------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._send(method, API_PREFIX + path, **kwargs)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if kwargs.get("timeout") is None:
            kwargs.pop("timeout", None)
        with translate_transport(self.base_url):
            response = self._http.request(method, url, **kwargs)
        raise_for_status(response)
        return response

    def _parse(self, response: httpx.Response, cls: type[M]) -> M:
        try:
            return cls.model_validate(response.json())
        except ValueError as e:  # bad JSON or pydantic.ValidationError
            raise self._unexpected(response, e) from e

    def _parse_list(self, response: httpx.Response, cls: type[M]) -> list[M]:
        try:
            data = response.json()
            if not isinstance(data, list):
                raise ValueError(f"expected a list, got {type(data).__name__}")
            return [cls.model_validate(item) for item in data]
        except ValueError as e:
            raise self._unexpected(response, e) from e

    def _unexpected(self, response: httpx.Response, error: Exception) -> PodiumError:
        where = f"{response.request.method} {response.request.url.path}"
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return PodiumError(f"unexpected answer from Podium at {self.base_url} to {where}: {first}")


def _seg(value: str) -> str:
    """One URL path segment (names never contain '/', but never trust input)."""
    return quote(value, safe="")


def _rollout_missing(ep: EndpointPublic, revision: int) -> str | None:
    """What keeps `revision` from being rolled out, or None once it is."""
    if ep.status in (EndpointStatus.PAUSED, EndpointStatus.DELETING):
        raise Conflict(f"endpoint {ep.name} is {ep.status.value}", field="status")
    old = [r for r in ep.replicas if r.revision != revision]
    if old:
        return f"{len(old)} replica(s) of an older revision still up"
    ready = ep.ready_replicas
    if ready < ep.desired_replicas or any(r.state is not ReplicaState.READY for r in ep.replicas):
        return f"{ready}/{ep.desired_replicas} replicas of revision {revision} ready"
    if ep.desired_replicas == 0 and ep.status is not EndpointStatus.SCALED_TO_ZERO:
        return "not yet scaled to zero"
    if ep.desired_replicas > 0 and ep.status is not EndpointStatus.RUNNING:
        return f"status {ep.status.value}"
    return None


def _log_params(tail: int, replica: str | None, *, follow: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"tail": tail, "follow": "true" if follow else "false"}
    if replica:
        params["replica"] = replica
    return params


def _validated(cls: type[M], value: M | Mapping[str, Any]) -> M:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a {cls.__name__} or a mapping, got {type(value).__name__}")
    try:
        return cls.model_validate(dict(value))
    except ValidationError as e:
        raise invalid_from_validation(e) from None
