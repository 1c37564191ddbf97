"""The routing table the controller publishes and the gateway follows, and its source.

Plain frozen dataclasses: the gateway reads them on every request without validation.
The controller builds a new table and swaps the reference; readers never see a half-built one.

The table travels through a `RoutingSource` (publish, read the current one, be told of or
wait for a newer one). The gateway, the API and the controller depend only on that
Protocol; the server wires `InProcessRoutingSource`, the one for a single process. A source
shared by several server processes (e.g. PostgreSQL LISTEN/NOTIFY) implements the same
Protocol and changes nothing in the gateway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from podium.core.access import DEFAULT_PROJECT, RateLimit, Visibility, endpoint_key
from podium.core.observability_spec import CaptureSpec
from podium.core.phases import EndpointStatus
from podium.core.service_counts import ServiceSnapshot
from podium.core.task_spec import TaskSpec

DEFAULT_TASKS = TaskSpec()

if TYPE_CHECKING:
    from podium.core.spec import EndpointSpec


@dataclass(frozen=True, slots=True)
class ReplicaRoute:
    replica_id: str
    host: str
    port: int
    revision: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EndpointRoute:
    name: str  # the endpoint's key (`core.access.endpoint_key`): its name in `default`
    status: EndpointStatus
    replicas: tuple[ReplicaRoute, ...] = ()
    timeout_s: float = 60.0
    max_concurrency: int = 8  # requests the gateway sends one replica at a time
    max_queued_requests: int = 1000  # requests the gateway holds waiting for a replica slot
    wait_timeout_s: float = 60.0  # how long a held request waits (X-Podium-Wait-Timeout)
    created: int = 0  # unix time the endpoint was created (the OpenAI model list shows it)
    framework: str = ""  # the endpoint's runtime (the OpenAI router names it in errors)
    # The replicas answer OpenAI's routes: True, False, or None when only the running model
    # can tell (`podium.runtimes.registry.serves_openai`).
    openai: bool | None = None
    project: str = DEFAULT_PROJECT
    visibility: Visibility = Visibility.PROTECTED
    rate_limit: RateLimit | None = None  # for all callers of the endpoint together
    capture: CaptureSpec | None = None  # payload capture for the request records
    tasks: TaskSpec = DEFAULT_TASKS  # async tasks: attempts, lease, result TTL (issue 13)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    version: int = 0
    endpoints: Mapping[str, EndpointRoute] = field(default_factory=dict)


TableListener = Callable[["RoutingTable"], None]
_Listeners = tuple[TableListener, ...]


def endpoint_route(
    spec: EndpointSpec,
    status: EndpointStatus,
    *,
    created: int,
    openai: bool | None,
    replicas: tuple[ReplicaRoute, ...] = (),
) -> EndpointRoute:
    """The route of an endpoint with this spec (the controller's and the API's alike)."""
    limit = spec.rate_limit
    return EndpointRoute(
        name=endpoint_key(spec.project, spec.name),
        status=status,
        replicas=replicas,
        timeout_s=spec.timeout_s,
        max_concurrency=spec.max_concurrency,
        max_queued_requests=spec.scaling.max_queued_requests,
        wait_timeout_s=spec.scaling.wait_timeout,
        created=created,
        framework=spec.framework,
        openai=openai,
        project=spec.project,
        visibility=spec.visibility,
        rate_limit=RateLimit(limit.rps, limit.burst) if limit is not None else None,
        capture=spec.observability.capture if spec.observability is not None else None,
        tasks=spec.tasks,
    )


class RoutingSource(Protocol):
    """Where the routing table is published and followed (the seam; see the module doc).

    `table` is the current table: a plain attribute read, on every gateway request, so an
    implementation keeps the latest table in memory and swaps the reference. `subscribe`'s
    listeners may be called on any thread (an event-loop reader hands the news over with
    `loop.call_soon_threadsafe`); `wait_newer` blocks a thread, never an event loop.
    """

    @property
    def table(self) -> RoutingTable:
        """The current table (never a half-built one)."""
        ...

    def publish(self, endpoints: Mapping[str, EndpointRoute]) -> RoutingTable:
        """The controller's whole table; returns the table now current."""
        ...

    def add(self, route: EndpointRoute) -> None:
        """The API just created this endpoint: route it now, before the controller knows."""
        ...

    def remove(self, name: str) -> None:
        """The API is deleting this endpoint: stop routing it now."""
        ...

    def subscribe(self, listener: TableListener) -> Callable[[], None]:
        """Call `listener(table)` after each change; returns the function that stops it."""
        ...

    def wait_newer(self, version: int, timeout: float) -> RoutingTable:
        """The current table once its version is above `version`, or after `timeout` s."""
        ...


class InProcessRoutingSource:
    """The `RoutingSource` of one process: the controller, the API and the gateway share it.

    Holds the current table; `publish` swaps it, `wait_newer` blocks until it changes.

    The controller publishes whole tables built from its last read of the store. The API
    also changes the table at once, for one endpoint: `add` (just created: routable, so its
    requests are held, not refused) and `remove` (just deleted). Such a change stays in
    every table the controller publishes until the controller's own table agrees with it
    (includes the added endpoint, lacks the removed one): a table built from a store read
    made before the API's change cannot undo it. The controller lists every endpoint that
    is not being deleted, so each change is confirmed by its next pass.

    `subscribe(listener)` calls `listener(table)` after each publish, on the publishing
    thread (an event-loop reader hands it over with `loop.call_soon_threadsafe`).
    """

    def __init__(self) -> None:
        self._table = RoutingTable()
        self._cond = threading.Condition()
        self._listeners: tuple[TableListener, ...] = ()
        self._added: dict[str, EndpointRoute] = {}  # by the API, not yet in a published table
        self._removed: set[str] = set()  # by the API, still in the controller's table

    @property
    def table(self) -> RoutingTable:
        return self._table

    def publish(self, endpoints: Mapping[str, EndpointRoute]) -> RoutingTable:
        """The controller's table, with the API's changes it does not know of yet."""
        with self._cond:
            merged = dict(endpoints)
            for name in list(self._added):
                if name in merged:
                    del self._added[name]  # the controller knows it now
                else:
                    merged[name] = self._added[name]
            for name in list(self._removed):
                if name in merged:
                    del merged[name]
                else:
                    self._removed.discard(name)  # the controller knows it is gone
            table, listeners = self._swap(merged)
        return self._tell(table, listeners)

    def add(self, route: EndpointRoute) -> None:
        """An endpoint was just created (committed): route it now. A route the table
        already has (the controller's, with replicas) is kept."""
        with self._cond:
            self._removed.discard(route.name)
            if route.name in self._table.endpoints:
                return
            self._added[route.name] = route
            table, listeners = self._swap({**self._table.endpoints, route.name: route})
        self._tell(table, listeners)

    def remove(self, name: str) -> None:
        """An endpoint is being deleted (committed): stop routing it now."""
        with self._cond:
            self._added.pop(name, None)
            self._removed.add(name)
            if name not in self._table.endpoints:
                return
            kept = {k: v for k, v in self._table.endpoints.items() if k != name}
            table, listeners = self._swap(kept)
        self._tell(table, listeners)

    def _swap(self, endpoints: dict[str, EndpointRoute]) -> tuple[RoutingTable, _Listeners]:
        """Install a new table; the caller holds the lock and then calls `_tell`."""
        table = RoutingTable(self._table.version + 1, endpoints)
        self._table = table
        self._cond.notify_all()
        return table, self._listeners

    @staticmethod
    def _tell(table: RoutingTable, listeners: _Listeners) -> RoutingTable:
        for listener in listeners:  # outside the lock: a listener may read the holder
            listener(table)
        return table

    def subscribe(self, listener: TableListener) -> Callable[[], None]:
        """Call `listener(table)` after every publish; returns the function that stops it."""
        with self._cond:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._cond:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def wait_newer(self, version: int, timeout: float) -> RoutingTable:
        """The current table once newer than `version`, or after `timeout` s (a thread's
        wait: the publisher notifies under the lock)."""
        with self._cond:
            self._cond.wait_for(lambda: self._table.version > version, timeout)
            return self._table


@dataclass(frozen=True, slots=True)
class EndpointLoad:
    """One endpoint's load as the gateway sees it (what the autoscaler reads).

    Counters are totals since the gateway started; rates are differences between snapshots.
    """

    in_flight: int = 0  # requests forwarded to replicas and not yet answered
    held: int = 0  # requests waiting in the activator because no replica is ready
    requests: int = 0
    errors: int = 0  # 5xx answers, from the gateway or a replica
    succeeded: int = 0  # 2xx and 3xx answers (the endpoint served successfully)
    # Of those, the ones a replica answered, per revision of the replica (crash accounting).
    succeeded_by_revision: Mapping[int, int] = field(default_factory=dict)


def _as_source(source: InProcessRoutingSource) -> RoutingSource:  # mypy: it implements it
    return source


class GatewayView(Protocol):
    """What the controller may ask of the gateway (wired by server/app.py)."""

    def outstanding(self, replica_id: str) -> int:
        """Requests now in flight to this replica through the gateway."""
        ...

    def service_snapshot(self) -> ServiceSnapshot:
        """Cumulative counts per endpoint and per replica (`core.service_counts`)."""
        ...

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        """Per endpoint load, keyed by endpoint name (absent: no traffic seen yet)."""
        ...


class Waker(Protocol):
    """Wakes the controller at once instead of at its next tick."""

    def __call__(self, endpoint: str | None = None) -> None: ...
