"""`PodiumClient`: the Python SDK over Podium's REST API (control plane) and gateway.

Every method either returns pydantic models from `podium.core.schemas` (or `_views`) or
raises an error of the `podium.core.errors` tree (see `_errors`). The methods live in four
parts: this module (server, models, endpoints, the data plane and the plumbing),
`_observe` (events, logs, waiting), `_metrics` (the metrics history) and `_access`
(tokens, projects, secrets, audit, usage).

The token (`Authorization: Bearer`) is the `token` argument, else $PODIUM_TOKEN, else the
first line of `$PODIUM_HOME/credentials` (home `.podium` by default), the file `podium up`
writes on this machine, read only when `base_url`'s host is loopback
(`_access.discover_token`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from podium.client import _calls as calls
from podium.client._access import AccessMethods, project_params
from podium.client._apply import ApplyMethods
from podium.client._calls import API_PREFIX
from podium.client._catalog import CatalogMethods
from podium.client._errors import raise_for_status, translate_transport
from podium.client._jobs import JobMethods
from podium.client._live import LiveMethods
from podium.client._metrics import MetricsMethods
from podium.client._observe import ObserveMethods
from podium.client._packing import iter_file, pack_folder
from podium.client._records import RecordMethods
from podium.client._retry import DEFAULT_MAX_RETRIES, DEFAULT_MAX_TOTAL_S, RetryPolicy, replayable
from podium.client._tasks import TaskMethods
from podium.core.errors import Invalid
from podium.core.phases import EndpointStatus
from podium.core.schemas import (
    EndpointList,
    EndpointPublic,
    ModelPublic,
    ModelVersionPublic,
    ModelVersionPushed,
)
from podium.core.spec import (
    EndpointCreate,
    EndpointUpdate,
    InstanceType,
    RepoRef,
    parse_model_ref,
)

NO_RETRY = RetryPolicy(max_retries=0)

M = TypeVar("M", bound=BaseModel)


class PodiumClient(
    ApplyMethods,
    ObserveMethods,
    MetricsMethods,
    AccessMethods,
    RecordMethods,
    LiveMethods,
    TaskMethods,
    JobMethods,
    CatalogMethods,
):
    """A synchronous client for one Podium server.

    `base_url` defaults to $PODIUM_URL, then http://127.0.0.1:8000; `token` to $PODIUM_TOKEN,
    then `$PODIUM_HOME/credentials` when `base_url` is loopback (see the module doc).
    Methods that name an endpoint or a model take `project` (None: the default project).
    `transport` lets tests swap the network (e.g. `httpx.MockTransport(handler)`).
    A request the server refuses before doing anything (429, or 503 with Retry-After) is
    sent again up to `max_retries` times, waiting as the server asks, at most
    `max_retry_wait` seconds in all (`_retry`); `max_retries=0` never retries.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_TOTAL_S,
    ) -> None:
        self.retry = RetryPolicy(max_retries=max_retries, max_total_s=max_retry_wait)
        # The token is also given to the clients an endpoint makes (`.client`, `.openai()`).
        self.base_url, self.auth_token, headers = calls.connection(base_url, token)
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, headers=headers
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
        self,
        path: str | Path,
        name: str,
        *,
        framework: str | None = None,
        project: str | None = None,
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
                return self._upload(archive, name, framework, project)
        if not source.is_file():
            raise Invalid(f"{source} is neither a file nor a folder", field="path")
        return self._upload(source, name, framework, project)

    def _upload(
        self, file: Path, name: str, framework: str | None, project: str | None
    ) -> ModelVersionPushed:
        params = {"filename": file.name, **project_params(project)}
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

    def models(self, project: str | None = None) -> list[ModelPublic]:
        """Models of `project`, or of every project the token may read (None)."""
        response = self._request("GET", "/models", params=project_params(project))
        return self._parse_list(response, ModelPublic)

    def model(self, name: str, *, project: str | None = None) -> ModelPublic:
        response = self._request("GET", f"/models/{_seg(name)}", params=project_params(project))
        return self._parse(response, ModelPublic)

    def model_version(
        self, name: str, version: int, *, project: str | None = None
    ) -> ModelVersionPublic:
        response = self._request(
            "GET", f"/models/{_seg(name)}/versions/{int(version)}", params=project_params(project)
        )
        return self._parse(response, ModelVersionPublic)

    def delete_model(self, ref: str, *, project: str | None = None) -> None:
        """Delete one version (`iris:2`) or a whole model with all its versions (`iris`)."""
        parsed = parse_model_ref(ref, field="ref")
        if not isinstance(parsed, RepoRef):
            raise Invalid(
                f"{ref!r} is not in the model repository: use NAME or NAME:VERSION", field="ref"
            )
        params = project_params(project)
        if parsed.version is None:
            self._request("DELETE", f"/models/{_seg(parsed.name)}", params=params)
        else:
            path = f"/models/{_seg(parsed.name)}/versions/{parsed.version}"
            self._request("DELETE", path, params=params)

    # ------------------------------------------------------------ endpoints

    def deploy(self, spec: EndpointCreate | Mapping[str, Any]) -> EndpointPublic:
        """Create an endpoint (in the spec's `project`, default `default`). A mapping is
        validated locally first (`Invalid` names the field). Without `framework`, the server
        takes the one the model version records."""
        return self._parse(self._call(calls.deploy(spec)), EndpointPublic)

    def endpoints(
        self,
        status: EndpointStatus | str | None = None,
        label: str | Mapping[str, str] | None = None,
        name: str | None = None,
        project: str | None = None,
    ) -> list[EndpointPublic]:
        """List endpoints; `label` is `"k=v"` or a mapping (all must match); `project` None:
        every project the token may read."""
        response = self._call(calls.list_endpoints(status, label, name, project))
        return self._parse(response, EndpointList).items

    def endpoint(self, name: str, *, project: str | None = None) -> EndpointPublic:
        return self._parse(self._call(calls.get_endpoint(name, project)), EndpointPublic)

    def update(
        self,
        name: str,
        changes: EndpointUpdate | Mapping[str, Any],
        *,
        wait: bool = False,
        timeout: float = 300,
        project: str | None = None,
    ) -> EndpointPublic:
        """Change some fields; only the fields given (set) are sent.

        `wait=True`: return only once the change is rolled out (`wait_rolled_out`), raising
        `LoadError` with the reason if the endpoint's new revision fails."""
        ep = self._parse(self._call(calls.update(name, changes, project)), EndpointPublic)
        if wait:
            return self.wait_rolled_out(name, ep.revision, timeout=timeout, project=project)
        return ep

    def pause(self, name: str, *, project: str | None = None) -> EndpointPublic:
        return self._action(name, "pause", project=project)

    def resume(self, name: str, *, project: str | None = None) -> EndpointPublic:
        return self._action(name, "resume", project=project)

    def wake(self, name: str, *, project: str | None = None) -> EndpointPublic:
        """Start a scaled-to-zero endpoint now, without waiting for a request."""
        return self._action(name, "wake", project=project)

    def scale_to_zero(self, name: str, *, project: str | None = None) -> EndpointPublic:
        """Stop every replica now; the next request wakes the endpoint (unlike `pause`)."""
        return self._action(name, "scale-to-zero", project=project)

    def scale(
        self, name: str, min_replicas: int, max_replicas: int, *, project: str | None = None
    ) -> EndpointPublic:
        """Set the replica bounds; checked locally first (`Invalid` with the field under
        `scaling`, as deploy and update name it: `scaling.max_replicas` where the API, whose
        body has no `scaling`, says `max_replicas`)."""
        call = calls.scale(name, min_replicas, max_replicas, project)
        return self._parse(self._call(call), EndpointPublic)

    def delete(self, name: str, *, project: str | None = None) -> EndpointPublic:
        """Start deleting an endpoint; it is gone once its replicas have stopped."""
        return self._parse(self._call(calls.delete(name, project)), EndpointPublic)

    def _action(self, name: str, action: str, *, project: str | None = None) -> EndpointPublic:
        return self._parse(self._call(calls.action(name, action, None, project)), EndpointPublic)

    # ------------------------------------------------------------ data plane

    def invoke(
        self,
        name: str,
        payload: Any,
        *,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        project: str | None = None,
    ) -> Any:
        """POST `payload` as JSON to the endpoint (through the gateway); return its answer."""
        call = calls.invoke(name, payload, path=path, headers=headers, project=project)
        return calls.invoke_answer(self._call(call))

    # ------------------------------------------------------------ plumbing

    def _call(self, call: calls.Call) -> httpx.Response:
        return self._send(call.method, call.url, relayed=call.relayed, **call.kwargs())

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._send(method, API_PREFIX + path, **kwargs)

    def _send(
        self, method: str, url: str, *, relayed: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send one request, again while the server refuses it and says when to come back
        (`_retry`; `relayed`: a call through the gateway); raise the error of an
        unsuccessful answer."""
        if kwargs.get("timeout") is None:
            kwargs.pop("timeout", None)
        policy = self.retry if replayable(kwargs) else NO_RETRY
        retries, waited = 0, 0.0
        while True:
            with translate_transport(self.base_url):
                response = self._http.request(method, url, **kwargs)
            wait = policy.delay(response, retries, waited, relayed=relayed)
            if wait is None:
                break
            response.close()
            time.sleep(wait)
            retries, waited = retries + 1, waited + wait
        raise_for_status(response)
        return response

    def _parse(self, response: httpx.Response, cls: type[M]) -> M:
        return calls.parse(response, cls, self.base_url)

    def _parse_list(self, response: httpx.Response, cls: type[M]) -> list[M]:
        return calls.parse_list(response, cls, self.base_url)


_seg = calls.seg
