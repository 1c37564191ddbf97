"""The routing table: built from the tracked replicas at the end of each pass and published
to the gateway (`core.routing.RoutingSource`) when it differs from the last one stored.

Only ready replicas are routed; an endpoint being deleted has no route. Published before
anything drained is stopped, so a replica leaves the table before its process is told to
stop (`draining`).

A publish can fail (with several processes the table is written to the database, which
may be away). Then the error propagates, the pass ends before `Draining.advance`, and the
table is not remembered as published: the next pass publishes it again, however long the
database takes. Only once a table without a draining replica was stored does the replica
get `unrouted_at`, from which `draining` counts its grace: until then every gateway may
still route to it, and stopping it would fail their requests.
"""

from __future__ import annotations

from collections.abc import Iterable

from podium.control.state import ControllerState
from podium.core.clock import Clock, SystemClock
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.routing import EndpointRoute, ReplicaRoute, RoutingSource, endpoint_route
from podium.runtimes.registry import serves_openai
from podium.store.records import EndpointRecord


class Publisher:
    def __init__(
        self, holder: RoutingSource, state: ControllerState, clock: Clock | None = None
    ) -> None:
        self.holder = holder
        self.state = state
        self.clock = clock or SystemClock()
        self._routes: dict[str, EndpointRoute] = {}  # as last stored
        # Each endpoint's route as last built, with what it was built from: an endpoint
        # whose spec, creation, status and ready replicas are the same keeps its route
        # object (1,000 endpoints at zero: no route rebuilt). The store's list hands the
        # same spec object while the spec is unchanged, so the key compares by identity.
        self._built: dict[str, tuple[tuple[object, ...], EndpointRoute]] = {}
        self._ready: frozenset[str] = frozenset()  # the ready replicas the last build routed

    def build(self, endpoints: Iterable[EndpointRecord]) -> dict[str, EndpointRoute]:
        """The route of every endpoint that is not being deleted."""
        ready: dict[str, list[ReplicaRoute]] = {}
        for r in sorted(self.state.replicas.values(), key=lambda r: r.replica_id):
            if r.state is ReplicaState.READY:
                ready.setdefault(r.endpoint, []).append(
                    ReplicaRoute(r.replica_id, r.host, r.port, r.revision)
                )
        self._ready = frozenset(r.replica_id for routes in ready.values() for r in routes)
        routes: dict[str, EndpointRoute] = {}
        built: dict[str, tuple[tuple[object, ...], EndpointRoute]] = {}
        for ep in endpoints:
            if ep.status is EndpointStatus.DELETING:
                continue
            mine = tuple(ready.get(ep.name, ()))
            status = self.state.current_status(ep)
            key = (ep.spec, ep.created_at, status, mine)
            last = self._built.get(ep.name)
            if last is not None and last[0] == key:
                route = last[1]
            else:
                route = endpoint_route(
                    ep.spec,
                    status,
                    created=int(ep.created_at.timestamp()),
                    openai=serves_openai(ep.spec.framework, ep.spec.task),
                    replicas=mine,
                )
            routes[ep.name] = route
            built[ep.name] = (key, route)
        self._built = built  # a deleted endpoint's entry goes with it
        return routes

    def newly_ready(self) -> set[str]:
        """The endpoints with a replica that became ready since the last build (the table
        lacks it)."""
        return {
            r.endpoint
            for r in self.state.replicas.values()
            if r.state is ReplicaState.READY and r.replica_id not in self._ready
        }

    def publish(self, endpoints: Iterable[EndpointRecord]) -> None:
        """Publish the table if it changed; raises what the holder raises (module doc)."""
        routes = self.build(endpoints)
        if routes != self._routes:
            # The holder keeps what the API added or removed since this pass read the store.
            self.holder.publish(routes)  # raises: not remembered, so published again next pass
            self._routes = routes
        # The stored table routes no draining replica (only ready ones are routed).
        now = self.clock.monotonic()
        for r in self.state.replicas.values():
            if r.state is ReplicaState.DRAINING and r.unrouted_at is None:
                r.unrouted_at = now
