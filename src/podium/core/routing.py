"""The routing table the controller publishes and the gateway follows.

Plain frozen dataclasses: the gateway reads them on every request without validation.
The controller builds a new table and swaps the reference; readers never see a half-built one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from podium.core.phases import EndpointStatus


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
    name: str
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


@dataclass(frozen=True, slots=True)
class RoutingTable:
    version: int = 0
    endpoints: Mapping[str, EndpointRoute] = field(default_factory=dict)


TableListener = Callable[["RoutingTable"], None]


class RoutingTableHolder:
    """Holds the current table; `publish` swaps it, `wait_newer` blocks until it changes.

    `subscribe(listener)` calls `listener(table)` after each publish, on the publishing
    thread (an event-loop reader hands it over with `loop.call_soon_threadsafe`).
    """

    def __init__(self) -> None:
        self._table = RoutingTable()
        self._cond = threading.Condition()
        self._listeners: tuple[TableListener, ...] = ()

    @property
    def table(self) -> RoutingTable:
        return self._table

    def publish(self, endpoints: Mapping[str, EndpointRoute]) -> RoutingTable:
        with self._cond:
            table = RoutingTable(self._table.version + 1, dict(endpoints))
            self._table = table
            self._cond.notify_all()
            listeners = self._listeners
        for listener in listeners:
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


class GatewayView(Protocol):
    """What the controller may ask of the gateway (wired by server.py)."""

    def outstanding(self, replica_id: str) -> int:
        """Requests now in flight to this replica through the gateway."""
        ...

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        """Per endpoint load, keyed by endpoint name (absent: no traffic seen yet)."""
        ...


class Waker(Protocol):
    """Wakes the controller at once instead of at its next tick."""

    def __call__(self, endpoint: str | None = None) -> None: ...
