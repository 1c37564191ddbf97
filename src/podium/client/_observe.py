"""The SDK's observing and waiting methods (events, revisions, logs, replica metrics,
`wait_for`, `wait_rolled_out`): a mixin of `PodiumClient`, over its plumbing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from podium.client import _sse
from podium.client._access import project_params
from podium.client._calls import wait_done
from podium.client._errors import error_from_response, translate_transport
from podium.core.errors import Conflict, LoadError, NotFound, Unavailable
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.schemas import (
    EndpointPublic,
    EventList,
    EventPublic,
    LogLine,
    LogList,
    RevisionPublic,
)

API_PREFIX = "/api/v1"
M = TypeVar("M", bound=BaseModel)
LINE_EVENT = "line"  # the event of one log line in a follow's event stream
RECONNECT_S = 1.0  # a follow whose connection was lost tries again after this long
RECONNECTS = 5  # failed tries in a row before it gives up


def _seg(value: str) -> str:
    return quote(value, safe="")


class ObserveMethods:
    """Needs `_request`, `_parse`, `_parse_list`, `endpoint`, `_http`, `base_url`, `timeout`."""

    base_url: str
    timeout: float
    _http: httpx.Client

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...
        def _parse(self, response: httpx.Response, cls: type[M]) -> M: ...
        def _parse_list(self, response: httpx.Response, cls: type[M]) -> list[M]: ...
        def endpoint(self, name: str, *, project: str | None = None) -> EndpointPublic: ...

    def events(
        self, name: str, after: int = 0, limit: int = 500, *, project: str | None = None
    ) -> list[EventPublic]:
        params = {"after": after, "limit": limit, **project_params(project)}
        response = self._request("GET", f"/endpoints/{_seg(name)}/events", params=params)
        return self._parse(response, EventList).items

    def revisions(self, name: str, *, project: str | None = None) -> list[RevisionPublic]:
        params = project_params(project)
        response = self._request("GET", f"/endpoints/{_seg(name)}/revisions", params=params)
        return self._parse_list(response, RevisionPublic)

    def logs(
        self,
        name: str,
        tail: int = 200,
        replica: str | None = None,
        *,
        project: str | None = None,
    ) -> list[LogLine]:
        params = {**_log_params(tail, replica, follow=False), **project_params(project)}
        response = self._request("GET", f"/endpoints/{_seg(name)}/logs", params=params)
        return self._parse(response, LogList).items

    def replica_metrics(self, name: str, replica_id: str, *, project: str | None = None) -> str:
        """One replica's Prometheus metrics text, fetched from it by the server now (the
        gateway does not serve a replica's own `/metrics`)."""
        path = f"/endpoints/{_seg(name)}/replicas/{_seg(replica_id)}/metrics"
        return self._request("GET", path, params=project_params(project)).text

    def follow_logs(
        self,
        name: str,
        tail: int = 200,
        replica: str | None = None,
        *,
        project: str | None = None,
        reconnect: bool = True,
    ) -> Iterator[LogLine]:
        """Yield log lines as they are written (each replica's last `tail` first) until the
        endpoint is gone (404) or the caller stops iterating.

        Server-Sent Events (`Accept: text/event-stream`): one `line` event per line, its
        data `{"replica": id, "line": text}`; the server's heartbeats are skipped. A stream
        that ends, lost (reset, timed out) or closed cleanly (a server restarting
        gracefully closes it as one whose endpoint was deleted does), is made again
        (`reconnect`, after `RECONNECT_S`) with `Last-Event-ID`: the server goes on from
        then without repeating what was seen (lines written while disconnected are not
        replayed). The follow stops when the server answers 404 (the endpoint is gone), or
        raises after `RECONNECTS` failed tries in a row; with `reconnect=False` it ends
        with the first stream. A generator: the request is made, and errors raised, on the
        first `next()`.
        """
        params = {**_log_params(tail, replica, follow=True), **project_params(project)}
        path = f"{API_PREFIX}/endpoints/{_seg(name)}/logs"
        timeout = httpx.Timeout(self.timeout, read=None)
        last_id: str | None = None  # the last event seen (none yet: a reconnect gets the tail)
        connected = False
        failures = 0
        while True:
            headers = {"accept": _sse.MEDIA_TYPE}
            if last_id is not None:
                headers["last-event-id"] = last_id
            try:
                with (
                    translate_transport(self.base_url),
                    self._http.stream(
                        "GET", path, params=params, headers=headers, timeout=timeout
                    ) as response,
                ):
                    if response.is_error:
                        raise error_from_response(response)
                    connected, failures = True, 0
                    for event in _sse.events(response.iter_lines()):
                        last_id = event.id or last_id
                        if event.name == LINE_EVENT:
                            data = json.loads(event.data)
                            yield LogLine(replica_id=data["replica"], line=data["line"])
                # The server ended the stream cleanly: it is restarting, or the endpoint
                # is gone. The next try tells which (a 404 ends the follow).
                if not reconnect:
                    return
            except Unavailable:
                failures += 1
                if not reconnect or not connected or failures > RECONNECTS:
                    raise  # never connected, or gone for good
            except NotFound:
                if not connected:
                    raise
                return  # deleted while we were away
            time.sleep(RECONNECT_S)

    def wait_for(
        self,
        name: str,
        statuses: Iterable[EndpointStatus | str],
        timeout: float = 120,
        poll: float = 0.25,
        *,
        project: str | None = None,
    ) -> EndpointPublic:
        """Poll until the endpoint's status is one of `statuses`.

        Raises `LoadError` at once if it becomes failed (and failed is not wanted), with the
        status reason; `WaitTimeout` (an `Unavailable`) after `timeout` seconds, with the
        last status seen.
        """
        wanted = frozenset(EndpointStatus(s) for s in statuses)
        deadline = time.monotonic() + timeout
        while True:
            ep = self.endpoint(name, project=project)
            left = deadline - time.monotonic()
            if wait_done(ep, wanted, timeout, left):
                return ep
            time.sleep(min(poll, left))

    def wait_rolled_out(
        self,
        name: str,
        revision: int,
        timeout: float = 300,
        poll: float = 0.25,
        *,
        project: str | None = None,
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
            ep = self.endpoint(name, project=project)
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
